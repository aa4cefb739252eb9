import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import type { FileAppender } from './file-appender.js';

/** O_DIRECT needs buffer addresses, lengths and file offsets aligned to the device's logical block; 4 KiB covers 512-byte and 4K devices. */
const BLOCK = 4096;
/** Each staging buffer is written with one pwrite; while one fills, the others are on their way to the disk. */
const BUFFER_BYTES = 4 * 1024 * 1024;
const BUFFERS = 4;
const WASM_PAGE = 65536;
/**
 * Whole blocks wait at most about this long in a buffer that is not full: the idle timer looks
 * every half of it, and writes them unless a write went out in the last quarter (while bytes
 * flow, full buffers go out far more often than that).
 */
const IDLE_WRITE_MS = 500;
/** Staging buffers kept for the next file: V8 reserves address space for every WebAssembly.Memory, so they are reused rather than made per file. */
const POOL_MAX = 4;
const stagingPool: Buffer[][] = [];

function allocateStaging(): Buffer[] {
  const memory = new WebAssembly.Memory({ initial: (BUFFER_BYTES * BUFFERS) / WASM_PAGE });
  return Array.from({ length: BUFFERS }, (_, i) => Buffer.from(memory.buffer, i * BUFFER_BYTES, BUFFER_BYTES));
}

/**
 * Appends with O_DIRECT: bytes go from our own buffers to the disk without passing through the
 * page cache. On this VM that is the difference between a 2 GiB pull costing ~5 s of kernel CPU
 * (allocating and filling page-cache pages, then writing them back) and ~1.5 s; the final fsync
 * then has nothing left to write, and a pull of a 70 GB model does not evict everything else
 * the box had cached.
 *
 * O_DIRECT wants aligned memory, which a Node Buffer does not promise; a WebAssembly.Memory is
 * mapped by V8 on page boundaries, so its bytes are our staging buffers. `lend` answers the free
 * end of the current buffer (a socket reads straight into it); a full buffer is written at its
 * (aligned) offset while the next fills. The last, partial block goes through an ordinary
 * descriptor, since its length is not aligned. Whole blocks never wait in memory for more than
 * about half a second: the idle timer writes them in place (a slow or stalled download would
 * otherwise lose them to a SIGKILL), and the buffer's own write later starts after them. A
 * partial file whose size is not a multiple of the block is continued by reading its last block
 * back into the first buffer. Where the filesystem refuses O_DIRECT (EINVAL), `open` answers
 * undefined, or a later write falls back to ordinary writes on its own.
 */
export class DirectFileAppender implements FileAppender {
  private readonly buffers: Buffer[];
  /** The writes of each buffer, while any is in flight. */
  private readonly inFlight: Array<Promise<void> | undefined> = new Array(BUFFERS).fill(undefined);
  private current = 0;
  /** Bytes in the current buffer. */
  private fill: number;
  /** Bytes at the start of the current buffer already written by the idle timer. */
  private written = 0;
  /** File offset of the current buffer's first byte (always aligned). */
  private offset: number;
  private failed = false;
  private error: unknown;
  /** The lowest offset a write failed at: the file is cut there, so it never holds a hole. */
  private failedAt = Infinity;
  /** Ordinary descriptor for the unaligned tail, or for everything once O_DIRECT was refused. */
  private plain: Promise<FileHandle> | undefined;
  private directRefused = false;
  private closed = false;
  private lastWriteAt = Date.now();
  private readonly idleTimer: NodeJS.Timeout;

  private constructor(
    private readonly path: string,
    private readonly direct: FileHandle,
    start: number,
  ) {
    this.buffers = stagingPool.pop() ?? allocateStaging();
    this.offset = start - (start % BLOCK);
    this.fill = start - this.offset;
    this.idleTimer = setInterval(() => this.writeWaitingBlocks(), IDLE_WRITE_MS / 2).unref();
  }

  /** Opens `path` for appending with O_DIRECT, or answers undefined where the filesystem refuses it. */
  static async open(path: string): Promise<DirectFileAppender | undefined> {
    if (constants.O_DIRECT === undefined) return undefined; // not Linux: macOS has no O_DIRECT flag
    let handle: FileHandle;
    try {
      handle = await open(path, constants.O_RDWR | constants.O_CREAT | constants.O_DIRECT, 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') return undefined;
      throw err;
    }
    let size: number;
    try {
      size = (await handle.stat()).size;
    } catch (err) {
      await handle.close().catch(() => undefined);
      throw err;
    }
    const appender = new DirectFileAppender(path, handle, size);
    try {
      if (appender.fill > 0 && !(await appender.readBackLastBlock())) {
        await appender.close();
        return undefined;
      }
      return appender;
    } catch (err) {
      await appender.close();
      throw err;
    }
  }

  lend(): Buffer | undefined {
    if (this.failed || this.closed || (this.fill === 0 && this.inFlight[this.current])) return undefined;
    return this.buffers[this.current].subarray(this.fill);
  }

  commit(n: number): void {
    if (this.failed || this.closed || n === 0) return;
    this.fill += n;
    if (this.fill === BUFFER_BYTES) this.submit(BUFFER_BYTES);
  }

  async writable(): Promise<void> {
    if (this.fill === 0) await this.inFlight[this.current];
    if (this.failed) throw this.error;
  }

  async flush(): Promise<void> {
    clearInterval(this.idleTimer);
    const blocks = this.fill - (this.fill % BLOCK);
    const tail = this.fill - blocks;
    if (!this.failed && tail > 0) {
      // The partial block: an ordinary write, beside the aligned part of the same buffer.
      const tailWrite = this.writePlain(this.buffers[this.current].subarray(blocks, this.fill), this.offset + blocks);
      if (blocks > this.written) this.submit(blocks);
      await tailWrite;
    } else if (!this.failed && blocks > this.written) {
      this.submit(blocks);
    }
    for (let i = 0; i < BUFFERS; i++) await this.inFlight[i];
    if (this.failed) {
      if (Number.isFinite(this.failedAt)) await this.direct.truncate(this.failedAt).catch(() => undefined);
      throw this.error;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.idleTimer);
    for (let i = 0; i < BUFFERS; i++) await this.inFlight[i];
    await this.direct.close().catch(() => undefined);
    const plain = await this.plain?.catch(() => undefined);
    await plain?.close().catch(() => undefined);
    if (stagingPool.length < POOL_MAX) stagingPool.push(this.buffers);
  }

  /** Starts writing the current buffer up to `length` (aligned) bytes and moves on to the next buffer. */
  private submit(length: number): void {
    this.startWrite(this.current, this.written, length);
    this.offset += length;
    this.current = (this.current + 1) % BUFFERS;
    this.fill = 0;
    this.written = 0;
  }

  /**
   * The idle timer: whole blocks that have waited too long are written in place. The buffer
   * keeps filling behind them (a lent part is never touched), so this never moves a byte, and
   * the buffer's own write later starts after them.
   */
  private writeWaitingBlocks(): void {
    const blocks = this.fill - (this.fill % BLOCK);
    if (blocks <= this.written || this.failed || Date.now() - this.lastWriteAt < IDLE_WRITE_MS / 4) return;
    this.startWrite(this.current, this.written, blocks);
    this.written = blocks;
  }

  /** Writes bytes `from`-`to` (aligned) of `buffers[index]` where they belong; the buffer counts as in flight until every write of it is done. */
  private startWrite(index: number, from: number, to: number): void {
    const write = this.writeBlocks(this.buffers[index].subarray(from, to), to - from, this.offset + from);
    const all: Promise<void> = Promise.all([this.inFlight[index], write]).then(() => {
      if (this.inFlight[index] === all) this.inFlight[index] = undefined;
    });
    this.inFlight[index] = all;
    this.lastWriteAt = Date.now();
  }

  /** Never rejects: a failure is recorded (with the offset it happened at) for append and flush to report. */
  private async writeBlocks(buffer: Buffer, length: number, at: number): Promise<void> {
    if (!this.directRefused) {
      try {
        const { bytesWritten } = await this.direct.write(buffer, 0, length, at);
        if (bytesWritten === length) return;
        // Short (a nearly full disk): the rest is unaligned now, so an ordinary write finds the real error.
        return await this.writePlain(buffer.subarray(bytesWritten, length), at + bytesWritten);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') return this.fail(err, at);
        this.directRefused = true; // a device with a larger block than ours, say
      }
    }
    await this.writePlain(buffer.subarray(0, length), at);
  }

  /** Never rejects, like writeBlocks. */
  private async writePlain(bytes: Buffer, at: number): Promise<void> {
    let done = 0;
    try {
      this.plain ??= open(this.path, 'r+');
      const plain = await this.plain;
      while (done < bytes.length) done += (await plain.write(bytes, done, bytes.length - done, at + done)).bytesWritten;
    } catch (err) {
      this.fail(err, at + done);
    }
  }

  /** Continuing a partial file that ends mid-block: its last block goes back into the first buffer. */
  private async readBackLastBlock(): Promise<boolean> {
    try {
      const { bytesRead } = await this.direct.read(this.buffers[0], 0, BLOCK, this.offset);
      return bytesRead === this.fill;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EINVAL') return false;
      throw err;
    }
  }

  private fail(err: unknown, at: number): void {
    if (!this.failed) this.error = err;
    this.failed = true;
    this.failedAt = Math.min(this.failedAt, at);
  }
}
