import { open, type FileHandle } from 'node:fs/promises';

/** Ask the kernel to write back every this many bytes. */
const SYNC_EVERY = 64 * 1024 * 1024;
/** Chunks received while a write is in flight are batched into one writev, up to this many. */
const MAX_BATCH = 64;

export interface AppendOptions {
  /** Sees every chunk, in order, just before it is written (the downloader hashes here). */
  beforeWrite?: (chunk: Buffer) => void;
  /** Called as each chunk arrives (the stall watchdog listens here). */
  onReceive?: () => void;
}

/**
 * Appends everything `source` yields to `path`, batching chunks that arrive while a write is in
 * flight into one writev. Two things a plain `pipeline()` into a write stream does not do:
 * - when `source` fails, the bytes already received are still written before the error is
 *   thrown, so a resume starts from the last byte that arrived;
 * - every 64 MiB it starts an fdatasync in the background. With 24 GiB of RAM the kernel would
 *   otherwise hold a 2 GiB download dirty in the page cache and write it all in the final
 *   fsync; this way disk writes overlap the download. Durability still comes from the caller's
 *   final fsync.
 * A for-await loop with batched writes also costs about a third less CPU than piping through a
 * Writable here (measured: 2 GiB over loopback, 7 s vs 10 s of CPU on this 2-core machine).
 */
export async function appendStreamToFile(source: AsyncIterable<Buffer>, path: string, opts: AppendOptions = {}): Promise<void> {
  const file = await open(path, 'a');
  let pending: Buffer[] = [];
  let writing: Promise<void> | undefined;
  let writeError: unknown;
  let sinceSync = 0;
  let syncing: Promise<void> | undefined;
  const flush = async (): Promise<void> => {
    try {
      while (pending.length > 0) {
        const batch = pending;
        pending = [];
        if (opts.beforeWrite) for (const chunk of batch) opts.beforeWrite(chunk);
        sinceSync += await writeAll(file, batch);
        if (sinceSync >= SYNC_EVERY && !syncing) {
          sinceSync = 0;
          syncing = file.datasync().then(
            () => void (syncing = undefined),
            () => void (syncing = undefined),
          );
        }
      }
    } catch (err) {
      writeError = err;
    } finally {
      writing = undefined;
    }
  };
  let readError: unknown;
  try {
    try {
      for await (const chunk of source) {
        opts.onReceive?.();
        pending.push(chunk);
        writing ??= flush();
        if (pending.length >= MAX_BATCH) await writing;
        if (writeError) throw writeError;
      }
    } catch (err) {
      readError = err;
    }
    while (writing) await writing;
    if (!writeError && pending.length > 0) await flush();
    if (writeError) throw writeError;
    if (readError) throw readError;
  } finally {
    await syncing;
    await file.close();
  }
}

/** writev may write less than asked (rarely, on regular files): write the rest. */
async function writeAll(file: FileHandle, buffers: Buffer[]): Promise<number> {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  let written = (await file.writev(buffers)).bytesWritten;
  while (written < total) {
    const rest = Buffer.concat(buffers).subarray(written);
    written += (await file.write(rest)).bytesWritten;
  }
  return total;
}
