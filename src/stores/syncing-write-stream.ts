import { open, type FileHandle } from 'node:fs/promises';
import { Writable } from 'node:stream';

/** Ask for write-back every this many bytes. */
const SYNC_EVERY = 64 * 1024 * 1024;

/**
 * Appends to a file and starts flushing it to disk while it is still being written: every
 * 64 MiB it calls fdatasync in the background (libuv's thread pool). With 24 GiB of RAM the
 * kernel would otherwise keep a 2 GiB download dirty in the page cache and write all of it in
 * the final fsync; this way disk writes overlap the download and the final fsync is short.
 * Durability still comes from that final fsync, not from these. `beforeWrite` sees every chunk,
 * in order, just before it is written (the downloader hashes there).
 */
export function createSyncingWriteStream(path: string, beforeWrite?: (chunk: Buffer) => void): Writable {
  let handle: FileHandle | undefined;
  let sinceSync = 0;
  let syncing: Promise<void> | undefined;
  const maybeSync = (bytes: number) => {
    sinceSync += bytes;
    if (sinceSync < SYNC_EVERY || syncing || !handle) return;
    sinceSync = 0;
    syncing = handle.datasync().then(
      () => void (syncing = undefined),
      () => void (syncing = undefined),
    );
  };
  return new Writable({
    highWaterMark: 1 << 20,
    construct(done) {
      open(path, 'a').then((h) => {
        handle = h;
        done();
      }, done);
    },
    writev(chunks, done) {
      const buffers = chunks.map((c) => c.chunk as Buffer);
      if (beforeWrite) for (const b of buffers) beforeWrite(b);
      writeAll(handle!, buffers).then((bytes) => {
        maybeSync(bytes);
        done();
      }, done);
    },
    final(done) {
      Promise.resolve(syncing).then(() => done(), done);
    },
    destroy(err, done) {
      Promise.resolve(syncing)
        .then(() => handle?.close())
        .then(() => done(err), () => done(err));
    },
  });
}

/** writev may write less than asked (rarely, on regular files): write the rest. */
async function writeAll(handle: FileHandle, buffers: Buffer[]): Promise<number> {
  const total = buffers.reduce((n, b) => n + b.length, 0);
  let written = (await handle.writev(buffers)).bytesWritten;
  while (written < total) {
    const rest = Buffer.concat(buffers).subarray(written);
    written += (await handle.write(rest)).bytesWritten;
  }
  return total;
}
