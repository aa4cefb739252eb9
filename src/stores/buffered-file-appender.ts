import { open, type FileHandle } from 'node:fs/promises';
import type { FileAppender } from './file-appender.js';

/** Ask the kernel to write back every this many bytes. */
const SYNC_EVERY = 64 * 1024 * 1024;
/** Chunks received while a write is in flight are batched into one writev, up to this many. */
const MAX_BATCH = 64;

/**
 * Appends through the page cache, for filesystems that refuse O_DIRECT. Chunks that arrive while
 * a write is in flight are batched into one writev (a third less CPU than piping into a
 * Writable, measured on a 2 GiB pull). Every 64 MiB it starts an fdatasync in the background:
 * with 24 GiB of RAM the kernel would otherwise hold a 2 GiB download dirty and write it all in
 * the caller's final fsync; this way disk writes overlap the download.
 */
export class BufferedFileAppender implements FileAppender {
  private pending: Buffer[] = [];
  private writing: Promise<void> | undefined;
  private error: unknown;
  private sinceSync = 0;
  private syncing: Promise<void> | undefined;

  private constructor(private readonly file: FileHandle) {}

  static async open(path: string): Promise<BufferedFileAppender> {
    return new BufferedFileAppender(await open(path, 'a'));
  }

  async append(chunk: Buffer): Promise<void> {
    if (this.error) throw this.error;
    this.pending.push(chunk);
    this.writing ??= this.drain();
    if (this.pending.length >= MAX_BATCH) await this.writing;
    if (this.error) throw this.error;
  }

  async flush(): Promise<void> {
    while (this.writing) await this.writing;
    if (!this.error && this.pending.length > 0) await this.drain();
    if (this.error) throw this.error;
  }

  async close(): Promise<void> {
    while (this.writing) await this.writing;
    await this.syncing;
    await this.file.close().catch(() => undefined);
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const batch = this.pending;
        this.pending = [];
        this.sinceSync += await writeAll(this.file, batch);
        if (this.sinceSync >= SYNC_EVERY && !this.syncing) {
          this.sinceSync = 0;
          const done = () => void (this.syncing = undefined);
          this.syncing = this.file.datasync().then(done, done);
        }
      }
    } catch (err) {
      this.error = err;
    } finally {
      this.writing = undefined;
    }
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
