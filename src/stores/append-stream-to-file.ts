import { BufferedFileAppender } from './buffered-file-appender.js';
import { DirectFileAppender } from './direct-file-appender.js';
import type { FileAppender } from './file-appender.js';

export interface AppendOptions {
  /** Sees every chunk, in order, as it arrives and before it is written (the downloader hashes here). */
  onChunk?: (chunk: Buffer) => void;
  /**
   * Write with O_DIRECT where the filesystem allows it (see DirectFileAppender), else through
   * the page cache. @defaultValue true
   */
  direct?: boolean;
}

/**
 * Appends everything `source` yields to `path`. Unlike a plain `pipeline()` into a write stream,
 * when `source` fails the bytes already received are still written before the error is thrown,
 * so a resume starts from the last byte that arrived. If writing fails, the file ends before the
 * first byte that could not be written. Durability is the caller's: fsync before trusting it.
 */
export async function appendStreamToFile(source: AsyncIterable<Buffer>, path: string, opts: AppendOptions = {}): Promise<void> {
  const appender: FileAppender = ((opts.direct ?? true) && (await DirectFileAppender.open(path))) || (await BufferedFileAppender.open(path));
  try {
    let failed = false;
    let readError: unknown;
    try {
      for await (const chunk of source) {
        opts.onChunk?.(chunk);
        await appender.append(chunk);
      }
    } catch (err) {
      failed = true;
      readError = err;
    }
    await appender.flush(); // a write error wins: it is the one to report
    if (failed) throw readError;
  } finally {
    await appender.close();
  }
}
