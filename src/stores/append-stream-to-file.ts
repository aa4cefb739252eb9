import { BufferedFileAppender } from './buffered-file-appender.js';
import { DirectFileAppender } from './direct-file-appender.js';
import { copyStreamIntoSink, type ByteSink } from '../util/byte-sink.js';
import type { FileAppender } from './file-appender.js';

export interface AppendOptions {
  /**
   * Write with O_DIRECT where the filesystem allows it (see DirectFileAppender), else through
   * the page cache. @defaultValue true
   */
  direct?: boolean;
}

export interface AppendStreamOptions extends AppendOptions {
  /** Sees every chunk, in order, as it arrives and before it is written (the downloader hashes here). */
  onChunk?: (chunk: Buffer) => void;
}

/**
 * Opens `path` for appending and lets `fill` put bytes into it. Unlike a plain `pipeline()`
 * into a write stream, when `fill` fails the bytes it already committed are still written
 * before the error is thrown, so a resume starts from the last byte that arrived. If writing
 * fails, the file ends before the first byte that could not be written, and that error is the
 * one thrown. Durability is the caller's: fsync before trusting it.
 */
export async function appendToFile(path: string, fill: (sink: ByteSink) => Promise<void>, opts: AppendOptions = {}): Promise<void> {
  const appender: FileAppender = ((opts.direct ?? true) && (await DirectFileAppender.open(path))) || (await BufferedFileAppender.open(path));
  try {
    let failed = false;
    let fillError: unknown;
    try {
      await fill(appender);
    } catch (err) {
      failed = true;
      fillError = err;
    }
    await appender.flush(); // a write error wins: it is the one to report
    if (failed) throw fillError;
  } finally {
    await appender.close();
  }
}

/** Appends everything `source` yields to `path`, as appendToFile does. */
export async function appendStreamToFile(source: AsyncIterable<Buffer>, path: string, opts: AppendStreamOptions = {}): Promise<void> {
  await appendToFile(path, (sink) => copyStreamIntoSink(source, sink, opts.onChunk), opts);
}
