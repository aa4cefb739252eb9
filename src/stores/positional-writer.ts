import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** O_DIRECT wants offsets and lengths on the device's logical block; 4 KiB covers 512-byte and 4K devices. */
export const DIRECT_BLOCK = 4096;

/**
 * Writes buffers at given offsets of one file (a parallel download's parts), with O_DIRECT where
 * the filesystem allows it. Callers give aligned memory (a WebAssembly.Memory's pages) and
 * block-aligned offsets; a length that is not a whole number of blocks (the file's last bytes)
 * has its tail written through an ordinary descriptor. Where O_DIRECT is refused (EINVAL, or
 * not Linux), everything goes through the ordinary descriptor, i.e. the page cache.
 */
export class PositionalWriter {
  private directRefused: boolean;

  private constructor(
    private readonly plain: FileHandle,
    private readonly direct: FileHandle | undefined,
  ) {
    this.directRefused = !direct;
  }

  /** Opens (creating) `path` for positional writes; `direct: false` uses the page cache only. */
  static async open(path: string, opts: { direct: boolean }): Promise<PositionalWriter> {
    const plain = await open(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    let direct: FileHandle | undefined;
    if (opts.direct && constants.O_DIRECT !== undefined) {
      direct = await open(path, constants.O_RDWR | constants.O_DIRECT).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EINVAL') return undefined;
        throw err;
      });
    }
    return new PositionalWriter(plain, direct);
  }

  /** The file's length becomes `size` (a sparse file the parts are written into). */
  async setSize(size: number): Promise<void> {
    await this.plain.truncate(size);
  }

  /** Writes all of `bytes` at `at` (block-aligned when O_DIRECT is in use). */
  async write(bytes: Buffer, at: number): Promise<void> {
    let done = 0;
    const aligned = bytes.length - (bytes.length % DIRECT_BLOCK);
    if (!this.directRefused && aligned > 0 && at % DIRECT_BLOCK === 0) {
      try {
        while (done < aligned) {
          const { bytesWritten } = await this.direct!.write(bytes, done, aligned - done, at + done);
          if (bytesWritten % DIRECT_BLOCK !== 0 || bytesWritten === 0) {
            done += bytesWritten;
            break; // short and unaligned (a nearly full disk): the ordinary write below finds the real error
          }
          done += bytesWritten;
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        this.directRefused = true; // a device with a larger block than ours, say
      }
    }
    while (done < bytes.length) done += (await this.plain.write(bytes, done, bytes.length - done, at + done)).bytesWritten;
  }

  /** Durable before it is renamed into place and indexed. */
  async sync(): Promise<void> {
    await this.plain.sync();
  }

  async close(): Promise<void> {
    await this.direct?.close().catch(() => undefined);
    await this.plain.close().catch(() => undefined);
  }
}
