import { open, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../../errors/ferry-error.js';
import { PositionalWriter } from '../../stores/positional-writer.js';
import type { ByteSink } from '../../util/byte-sink.js';
import type { BudgetShare, TransferLimits } from '../http/transfer-limits.js';
import { cancelled, downloadFile, isNetworkError, newHashes, verify, type DownloadOptions, type DownloadResult, type Hashes } from './download-file.js';
import type { DownloadBody } from './hf-client.js';
import { header, RetryableHubError } from './hub-errors.js';
import { readPartialRecord, recordOf, sameFile, validRanges, writePartialRecord } from './partial-record.js';

/**
 * Memory is handed out in slabs of this size: a slab is the unit of the window, of a disk write
 * and of resume (part boundaries fall on slab boundaries, which are 4 KiB multiples as O_DIRECT needs).
 */
export const SLAB_BYTES = 4 * 1024 * 1024;
/** Largest part one request asks for; small enough that the hashed frontier keeps up. */
const MAX_PART_BYTES = 16 * 1024 * 1024;
/** The resume record is rewritten at most this often (it may lag the disk, never lead it). */
const RECORD_EVERY_MS = 1000;
/** How often parts are compared for stragglers. */
const STRAGGLER_CHECK_MS = 1000;
/** A part this many times slower than the median of the others is split. */
const STRAGGLER_FACTOR = 3;
const WASM_PAGE = 65536;

export interface ParallelSettings {
  /** Files at least this large are fetched in parts (config `parallel_min_bytes`). */
  minBytes: number;
  /** Connections this file may use at once (config `pull_connections`). */
  connections: number;
  /** Memory for bytes received ahead of the hashed frontier (this file's share of `pull_memory_bytes`). */
  memoryBytes: number;
  /** The worker's limits (connections per host, bandwidth). */
  limits?: TransferLimits;
  /** This file's share of the pull's connections (`pull_connections`, shared by its files). */
  pullBudget?: BudgetShare;
  /** Told how many connections this file has open, whenever that changes. */
  onConnections?: (n: number) => void;
}

export type ParallelDownloadOptions = DownloadOptions & { parallel: ParallelSettings };

/** Whether a file of `size` bytes is fetched in parts under `settings`. */
export function fetchedInParts(size: number | undefined, settings: ParallelSettings | undefined): boolean {
  return settings !== undefined && settings.connections > 1 && size !== undefined && size > 0 && size >= settings.minBytes;
}

/**
 * Downloads one file over several connections, each fetching a part with a Range request, and
 * still hashes it in one pass with no second read (see ParallelDownload). Falls back to one
 * stream (downloadFile) for a server that ignores Range. A 416, or a size or commit that moved,
 * means the file changed: the partial is discarded and the download starts over, once.
 */
export async function downloadFileParallel(opts: ParallelDownloadOptions): Promise<DownloadResult> {
  if (!fetchedInParts(opts.target.size, opts.parallel)) return downloadFile(opts);
  for (let restarts = 0; ; restarts++) {
    try {
      return await new ParallelDownload(opts).run();
    } catch (err) {
      if (err instanceof SwitchToSingleStream) {
        opts.onEvent?.('the server ignored a Range request: one stream from byte 0');
        return downloadFile(opts);
      }
      if (!(err instanceof FileChanged)) throw err;
      if (restarts > 0) throw new FerryError('source.bad_response', `${opts.target.path}: the file changed on the server twice during the download (${err.message})`);
      opts.onEvent?.(`${err.message}: discarding the partial file and starting over`);
      await rm(opts.partPath, { force: true });
      await rm(`${opts.partPath}.json`, { force: true });
    }
  }
}

/** The server answered 200 to a Range request. */
class SwitchToSingleStream extends Error {}
/** A 416, or a Content-Range total, commit or digest that is not the file's. */
class FileChanged extends Error {}
class StallError extends Error {}
/** A connection stopped on purpose so a straggler's tail can have it. */
class Preempted extends Error {}
/** The part became shorter (a split) and is whole: the rest of the response is not needed. */
class PartWhole extends Error {}

interface Slab {
  index: number;
  slot: number;
  start: number;
  length: number;
  /** Bytes received, always a prefix of the slab (a slab belongs to one part). */
  filled: number;
  hashed: boolean;
  written: boolean;
  buf: Buffer;
}

interface Connection {
  body?: DownloadBody;
  lastByteAt: number;
  /** Waiting for memory or bandwidth, not for the server: not a stall. */
  blocked: boolean;
  /** `pos` at the last straggler check. */
  posAtCheck: number;
  bytesPerSecond?: number;
}

interface Part {
  start: number;
  end: number;
  /** Next byte to receive. */
  pos: number;
  failures: number;
  conn?: Connection;
}

/**
 * One file fetched in parts, hashed in file order as the bytes arrive.
 *
 * The hashed frontier `frontier`: every byte below it is hashed (and written, or about to be).
 * Bytes arrive into slabs of a ring of memory (`pull_memory_bytes`); a slab can only be taken
 * for an offset within one ring's length of the frontier, so the parts furthest ahead are the
 * ones that wait (their sockets pause) when the budget is full, and the frontier's part never
 * does. A slab is written to disk (O_DIRECT, at its offset) as soon as it is full, hashed as
 * soon as the frontier reaches it (the frontier's own slab is hashed as its bytes arrive), and
 * given back once both are done. Ranges written are kept in the resume record, so a worker
 * killed anywhere is followed by one that re-hashes them from disk when the frontier reaches
 * them and fetches only the rest: a part that was on disk is never fetched again.
 */
class ParallelDownload {
  private readonly size: number;
  private readonly recordPath: string;
  private readonly ringSlabs: number;
  private readonly ring: Buffer;
  private readonly slotUsed: boolean[];
  private readonly slabs = new Map<number, Slab>();
  private readonly partBytes: number;
  private readonly pending: Part[] = [];
  private readonly active = new Set<Part>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly writes = new Set<Promise<void>>();
  private readonly controller = new AbortController();
  private releaseWaiters: Array<() => void> = [];
  private written: Array<[number, number]> = [];
  private hashes: Hashes;
  private frontier = 0;
  private have = 0;
  private url = '';
  private writer: PositionalWriter | undefined;
  private failed: Error | undefined;
  private diskHashing = false;
  private recordDirty = false;
  private recordSaving: Promise<void> | undefined;
  private refreshing: Promise<void> | undefined;
  private openConnections = 0;
  private done: { resolve: () => void; reject: (err: Error) => void } | undefined;

  constructor(private readonly opts: ParallelDownloadOptions) {
    this.size = opts.target.size!;
    this.recordPath = `${opts.partPath}.json`;
    const { connections, memoryBytes } = opts.parallel;
    this.ringSlabs = Math.max(2, Math.floor(memoryBytes / SLAB_BYTES));
    // Parts: enough of them for every connection, each small enough that all of them fit the ring.
    const share = alignDown(Math.floor((this.ringSlabs * SLAB_BYTES) / connections), SLAB_BYTES);
    const even = alignUp(Math.ceil(this.size / connections), SLAB_BYTES);
    this.partBytes = Math.max(SLAB_BYTES, Math.min(MAX_PART_BYTES, share, even));
    // A WebAssembly.Memory is mapped on page boundaries, as O_DIRECT wants; pages are touched only as slabs fill.
    const memory = new WebAssembly.Memory({ initial: (this.ringSlabs * SLAB_BYTES) / WASM_PAGE });
    this.ring = Buffer.from(memory.buffer);
    this.slotUsed = new Array(this.ringSlabs).fill(false);
    this.hashes = newHashes(opts.target);
  }

  async run(): Promise<DownloadResult> {
    const { target, partPath, signal } = this.opts;
    signal.throwIfAborted();
    const onAbort = () => this.fail(cancelled());
    signal.addEventListener('abort', onAbort, { once: true });
    const timers = [setInterval(() => void this.saveRecord(), RECORD_EVERY_MS), setInterval(() => this.splitStragglers(), STRAGGLER_CHECK_MS)];
    try {
      await this.resolveUrl();
      await this.loadPartial();
      this.writer = await PositionalWriter.open(partPath, { direct: this.opts.directIo ?? true });
      await this.writer.setSize(this.size);
      this.recordDirty = true;
      await this.saveRecord();
      this.planParts();
      await this.transfer();
      await this.saveRecord();
      return await verify(partPath, this.recordPath, target, { ...this.hashes, bytes: this.frontier });
    } catch (err) {
      throw this.failed ?? err;
    } finally {
      signal.removeEventListener('abort', onAbort);
      for (const t of timers) clearInterval(t);
      this.controller.abort();
      for (const part of this.active) part.conn?.body?.destroy(new Preempted('stopping'));
      await Promise.allSettled([...this.tasks]);
      await Promise.allSettled([...this.writes]);
      await this.saveRecord().catch(() => undefined);
      await this.writer?.close();
    }
  }

  /** The CDN URL behind the hub's redirect, checked against the commit and digest we pinned. */
  private async resolveUrl(): Promise<void> {
    const { client, target, signal } = this.opts;
    const resolved = await client.resolveFile(target.repo, target.revision, target.path, signal);
    if (/^[0-9a-f]{40}$/.test(target.revision) && resolved.commit && resolved.commit !== target.revision) throw new FileChanged(`the revision moved to ${resolved.commit}`);
    if (target.sha256 && resolved.sha256 && resolved.sha256 !== target.sha256) throw new FileChanged('the file has another sha256 now');
    if (resolved.size !== undefined && resolved.size !== this.size) throw new FileChanged(`the file is ${resolved.size} bytes now`);
    this.url = resolved.url;
  }

  /** Keeps what an earlier attempt wrote of this very file; anything else is discarded. */
  private async loadPartial(): Promise<void> {
    const { partPath, target, onEvent } = this.opts;
    const record = await readPartialRecord(this.recordPath);
    const onDisk = await open(partPath, 'r').then(async (h) => ((await h.stat().finally(() => h.close())).size), () => 0);
    if (!sameFile(record, target)) {
      if (onDisk > 0) onEvent?.('discarding a partial file from a different revision');
      await rm(partPath, { force: true });
      return;
    }
    // A single stream's partial is its first bytes; a parallel one says which ranges it holds.
    const ranges = record!.written ? validRanges(record!, this.size) : onDisk > 0 ? [[0, Math.min(onDisk, this.size)] as [number, number]] : [];
    // Only whole slabs count (the file's end is a slab's end too): a part starts on a slab boundary.
    this.written = ranges
      .map(([s, e]) => [alignUp(s, SLAB_BYTES), e === this.size ? e : alignDown(e, SLAB_BYTES)] as [number, number])
      .filter(([s, e]) => e > s);
    this.have = this.written.reduce((n, [s, e]) => n + e - s, 0);
    if (this.have > 0) onEvent?.(`resuming: ${this.have} of ${this.size} bytes on disk in ${this.written.length} range(s)`);
  }

  /** Parts of at most partBytes over what is not on disk yet, in file order. */
  private planParts(): void {
    let at = 0;
    const gaps: Array<[number, number]> = [];
    for (const [s, e] of this.written) {
      if (s > at) gaps.push([at, s]);
      at = e;
    }
    if (at < this.size) gaps.push([at, this.size]);
    for (const [s, e] of gaps) {
      for (let start = s; start < e; ) {
        // A last bit shorter than a slab goes with the part before it, not a request of its own.
        const end = e - (start + this.partBytes) < SLAB_BYTES ? e : start + this.partBytes;
        this.pending.push({ start, end, pos: start, failures: 0 });
        start = end;
      }
    }
  }

  private transfer(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.done = { resolve, reject };
      this.advanceFrontier();
      this.pump();
    });
  }

  /** Starts parts while connections are free; a part beyond the window waits for the frontier. */
  private pump(): void {
    if (this.failed || !this.done) return;
    while (this.active.size < this.opts.parallel.connections) {
      let part: Part | undefined = this.pending[0];
      if (part && slabIndex(part.pos) < slabIndex(this.frontier) + this.ringSlabs) this.pending.shift();
      else part = this.splitLargest(); // nothing left to start, or only beyond the window: help the parts in flight
      if (!part) break;
      this.start(part);
    }
  }

  private start(part: Part): void {
    this.active.add(part);
    const task = this.runPart(part).finally(() => {
      this.tasks.delete(task);
      this.active.delete(part);
      this.pump();
    });
    this.tasks.add(task);
  }

  /** Fetches one part to its end, retrying that part only. */
  private async runPart(part: Part): Promise<void> {
    const { parallel, target, signal } = this.opts;
    const host = new URL(this.opts.client.endpoint).host; // one budget per Hub endpoint (its CDN is its hosts)
    const releases: Array<() => void> = [];
    try {
      if (parallel.pullBudget) releases.push(await parallel.pullBudget.acquire(this.controller.signal));
      if (parallel.limits) releases.push(await parallel.limits.acquire(host, this.controller.signal));
    } catch {
      for (const release of releases) release();
      return; // stopped while waiting for a connection
    }
    this.connectionsChanged(+1);
    try {
      while (part.pos < part.end && !this.failed) {
        const before = part.pos;
        try {
          await this.fetchPart(part);
          if (part.pos === before && part.pos < part.end) throw new RetryableHubError(`${target.path}: the server sent no bytes of range ${part.pos}-${part.end - 1}`);
        } catch (err) {
          if (this.failed || signal.aborted) return;
          if (err instanceof Preempted) {
            this.requeue(part);
            return;
          }
          if (!(await this.recover(part, before, err))) return;
        }
      }
    } finally {
      for (const release of releases) release();
      this.connectionsChanged(-1);
    }
  }

  /** After a failed request: true to ask again for the rest of the part, false once the download has failed. */
  private async recover(part: Part, before: number, err: unknown): Promise<boolean> {
    const { target, onEvent, signal } = this.opts;
    const range = `${part.pos}-${part.end - 1}`;
    if (err instanceof StallError) {
      onEvent?.(`range ${range}: no bytes for ${(this.opts.stallTimeoutMs ?? 30_000) / 1000} s: asking again`);
      return true;
    }
    if (err instanceof SwitchToSingleStream || err instanceof FileChanged || !(err instanceof RetryableHubError || err instanceof UrlExpired || isNetworkError(err))) {
      this.fail(err as Error);
      return false;
    }
    part.failures = part.pos > before ? 1 : part.failures + 1;
    const maxAttempts = this.opts.maxAttempts ?? 6;
    if (part.failures >= maxAttempts) {
      this.fail(new FerryError('source.unavailable', `${target.path}: range ${range}: giving up after ${part.failures} failed attempts: ${(err as Error).message}`, { cause: err }));
      return false;
    }
    if (err instanceof UrlExpired) {
      onEvent?.(`range ${range}: the download URL expired (${err.message}): resolving the file again`);
      await this.refreshUrl().catch((e) => this.fail(e as Error));
      return !this.failed;
    }
    const baseMs = this.opts.retryBaseMs ?? 1000;
    const waitMs = err instanceof RetryableHubError && err.retryAfterS !== undefined ? Math.min(err.retryAfterS * 1000, 120_000) : Math.min(baseMs * 2 ** (part.failures - 1), baseMs * 8);
    onEvent?.(`range ${range}: ${(err as Error).message}; retrying in ${(waitMs / 1000).toFixed(1)} s`);
    await sleep(waitMs, undefined, { signal: AbortSignal.any([signal, this.controller.signal]) }).catch(() => undefined);
    return !this.failed;
  }

  /** One ranged GET for the rest of the part, read straight into the window's slabs. */
  private async fetchPart(part: Part): Promise<void> {
    const { client, target } = this.opts;
    const from = part.pos;
    const res = await client.openRange(this.url, from, part.end - 1, target.path, this.controller.signal);
    const conn: Connection = { body: res.body, lastByteAt: Date.now(), blocked: false, posAtCheck: part.pos };
    part.conn = conn;
    const stallMs = this.opts.stallTimeoutMs ?? 30_000;
    const watchdog = setInterval(() => {
      if (conn.blocked) conn.lastByteAt = Date.now();
      else if (Date.now() - conn.lastByteAt > stallMs) res.body.destroy(new StallError('stalled'));
    }, Math.min(1000, stallMs / 4));
    try {
      this.checkHead(res.status, res.headers, from);
      await res.body.readInto(new PartSink(this, part), (bytes) => {
        conn.lastByteAt = Date.now();
        this.opts.parallel.limits?.consume(bytes.length);
      });
    } catch (err) {
      if (part.pos >= part.end && !(err instanceof StallError)) return; // whole (after a split): the rest was not wanted
      throw err;
    } finally {
      clearInterval(watchdog);
      res.body.destroy();
      part.conn = undefined;
    }
  }

  /** A ranged answer must be the range we asked for, of the file we pinned. */
  private checkHead(status: number, headers: Record<string, string | string[] | undefined>, from: number): void {
    if (status === 416) throw new FileChanged('the server refused the range (416)');
    if (status === 401 || status === 403 || status === 410) throw new UrlExpired(`${status}`);
    if (status === 200) throw new SwitchToSingleStream();
    const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(headers, 'content-range') ?? '');
    if (status !== 206 || !range) throw new FerryError('source.bad_response', `${this.opts.target.path}: a range request was answered ${status} without a valid Content-Range`);
    if (range[3] !== '*' && Number(range[3]) !== this.size) throw new FileChanged(`the file is ${range[3]} bytes now`);
    if (Number(range[1]) !== from) throw new FerryError('source.bad_response', `${this.opts.target.path}: asked for bytes from ${from}, got ${range[1]}-${range[2]}`);
  }

  /** One HEAD at a time, however many parts met the expired URL. */
  private refreshUrl(): Promise<void> {
    this.refreshing ??= this.resolveUrl().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  /** The slab for the byte at `pos`, taken from the ring if the window allows; undefined: wait. */
  slabAt(pos: number): Slab | undefined {
    const index = slabIndex(pos);
    const held = this.slabs.get(index);
    if (held) return held;
    if (index >= slabIndex(this.frontier) + this.ringSlabs) return undefined;
    const slot = index % this.ringSlabs;
    if (this.slotUsed[slot]) return undefined; // the slab a ring's length behind is still being written
    const start = index * SLAB_BYTES;
    const slab: Slab = { index, slot, start, length: Math.min(SLAB_BYTES, this.size - start), filled: 0, hashed: false, written: false, buf: this.ring.subarray(slot * SLAB_BYTES, (slot + 1) * SLAB_BYTES) };
    this.slotUsed[slot] = true;
    this.slabs.set(index, slab);
    return slab;
  }

  /** `n` bytes of `part` arrived in its slab. */
  received(part: Part, n: number): void {
    const slab = this.slabs.get(slabIndex(part.pos))!;
    slab.filled += n;
    part.pos += n;
    this.have += n;
    this.opts.onBytes?.(this.have);
    if (slab.filled === slab.length) this.writeSlab(slab);
    this.advanceFrontier();
  }

  /** Waits until a slab is given back (or the download failed). */
  nextRelease(): Promise<void> {
    if (this.failed) return Promise.resolve();
    return new Promise((resolve) => this.releaseWaiters.push(resolve));
  }

  get failure(): Error | undefined {
    return this.failed;
  }

  get limits(): TransferLimits | undefined {
    return this.opts.parallel.limits;
  }

  /** Hashes whatever is contiguous at the frontier: slabs in memory, or ranges an earlier run left on disk. */
  private advanceFrontier(): void {
    while (!this.diskHashing && this.frontier < this.size) {
      const slab = this.slabs.get(slabIndex(this.frontier));
      if (slab) {
        const end = slab.start + slab.filled;
        if (end > this.frontier) {
          const bytes = slab.buf.subarray(this.frontier - slab.start, slab.filled);
          this.hashes.sha256.update(bytes);
          this.hashes.sha1?.update(bytes);
          this.frontier = end;
        }
        if (slab.filled < slab.length) break;
        slab.hashed = true;
        this.release(slab);
        continue;
      }
      const onDisk = this.written.find(([s, e]) => s <= this.frontier && this.frontier < e);
      if (!onDisk) break;
      this.diskHashing = true;
      this.hashFromDisk(this.frontier, onDisk[1]).then(
        () => {
          this.diskHashing = false;
          this.advanceFrontier();
          this.pump();
        },
        (err) => this.fail(err as Error),
      );
    }
    this.checkDone();
  }

  /** Resume only: bytes an earlier run wrote are hashed from the file when the frontier gets there. */
  private async hashFromDisk(from: number, to: number): Promise<void> {
    const handle = await open(this.opts.partPath, 'r');
    const chunk = Buffer.allocUnsafe(1 << 20);
    try {
      while (this.frontier < to) {
        if (this.failed) throw this.failed;
        const want = Math.min(chunk.length, to - this.frontier);
        const { bytesRead } = await handle.read(chunk, 0, want, this.frontier);
        if (bytesRead === 0) throw new FerryError('source.bad_response', `${this.opts.target.path}: the partial file ends at ${this.frontier}, before ${to}`);
        this.hashes.sha256.update(chunk.subarray(0, bytesRead));
        this.hashes.sha1?.update(chunk.subarray(0, bytesRead));
        this.frontier += bytesRead;
      }
    } finally {
      await handle.close();
    }
    if (from === 0) this.opts.onEvent?.(`re-hashed ${to} bytes from disk`);
  }

  private writeSlab(slab: Slab): void {
    const write = this.writer!.write(slab.buf.subarray(0, slab.length), slab.start).then(
      () => {
        slab.written = true;
        this.addWritten(slab.start, slab.start + slab.length);
        this.release(slab);
      },
      (err) => this.fail(err as Error),
    );
    const tracked = write.finally(() => {
      this.writes.delete(tracked);
      this.checkDone();
    });
    this.writes.add(tracked);
  }

  /** A slab goes back to the ring once it is hashed and on disk. */
  private release(slab: Slab): void {
    if (!slab.hashed || !slab.written || this.slabs.get(slab.index) !== slab) return;
    this.slabs.delete(slab.index);
    this.slotUsed[slab.slot] = false;
    this.wakeWaiters();
    this.pump();
  }

  private wakeWaiters(): void {
    const waiters = this.releaseWaiters;
    this.releaseWaiters = [];
    for (const wake of waiters) wake();
  }

  private addWritten(start: number, end: number): void {
    const ranges = [...this.written, [start, end] as [number, number]].sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const [s, e] of ranges) {
      const last = merged[merged.length - 1];
      if (last && s <= last[1]) last[1] = Math.max(last[1], e);
      else merged.push([s, e]);
    }
    this.written = merged;
    this.recordDirty = true;
  }

  /** The record may claim only what is on disk: ranges are added after their write completed. */
  private async saveRecord(): Promise<void> {
    await this.recordSaving;
    if (!this.recordDirty) return;
    this.recordDirty = false;
    this.recordSaving = writePartialRecord(this.recordPath, recordOf(this.opts.target, this.written)).catch(() => {
      this.recordDirty = true; // tried again on the next tick; a resume then refetches a little more
    });
    await this.recordSaving;
  }

  private checkDone(): void {
    if (this.done && !this.failed && this.frontier === this.size && this.writes.size === 0) this.done.resolve();
  }

  fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.controller.abort();
    for (const part of this.active) part.conn?.body?.destroy(err);
    this.wakeWaiters();
    this.done?.reject(err);
  }

  private requeue(part: Part): void {
    this.pending.push(part);
    this.pending.sort((a, b) => a.pos - b.pos);
  }

  /** With every part started, a free connection takes the second half of the part with the most left (the tail goes faster). */
  private splitLargest(): Part | undefined {
    let largest: Part | undefined;
    for (const part of this.active) if (!largest || part.end - part.pos > largest.end - largest.pos) largest = part;
    const tail = largest && this.split(largest);
    if (tail) this.opts.onEvent?.(`range ${largest!.pos}-${tail.end - 1}: a free connection takes its second half from ${tail.start}`);
    return tail;
  }

  private split(part: Part): Part | undefined {
    const left = part.end - part.pos;
    if (left < 2 * SLAB_BYTES) return undefined;
    // On a slab boundary past the slab being filled, so the two halves never share a slab.
    const mid = alignUp(part.pos + Math.ceil(left / 2), SLAB_BYTES);
    if (mid >= part.end) return undefined;
    const tail: Part = { start: mid, end: part.end, pos: mid, failures: 0 };
    part.end = mid;
    return tail;
  }

  /**
   * A part far slower than the others holds the frontier back, and with it the whole window:
   * split it, and give its tail the connection of the part furthest ahead (which was waiting
   * for memory anyway).
   */
  private splitStragglers(): void {
    if (this.failed || this.active.size < 2) return;
    const measured = [...this.active].filter((p) => p.conn);
    for (const part of measured) {
      part.conn!.bytesPerSecond = ((part.pos - part.conn!.posAtCheck) * 1000) / STRAGGLER_CHECK_MS;
      part.conn!.posAtCheck = part.pos;
    }
    const front = measured.reduce<Part | undefined>((a, p) => (!a || p.pos < a.pos ? p : a), undefined);
    if (!front || front.conn!.blocked) return;
    const others = measured.filter((p) => p !== front);
    const running = others.filter((p) => !p.conn!.blocked).map((p) => p.conn!.bytesPerSecond!);
    // Either every other part waits for the frontier (the window is full behind this one), or it runs far below the others' median.
    const median = running.sort((a, b) => a - b)[Math.floor(running.length / 2)];
    const holdsAll = others.length > 0 && running.length === 0;
    if (!holdsAll && (median === undefined || median === 0 || front.conn!.bytesPerSecond! * STRAGGLER_FACTOR > median)) return;
    const tail = this.split(front);
    if (!tail) return;
    this.opts.onEvent?.(`range ${front.pos}-${tail.end - 1} is slow (${Math.round(front.conn!.bytesPerSecond! / 1024)} KiB/s, ${holdsAll ? 'every other part waits for it' : `others ${Math.round(median / 1024)} KiB/s`}): splitting it at ${tail.start}`);
    this.requeue(tail);
    if (this.active.size >= this.opts.parallel.connections) {
      const victim = [...this.active].filter((p) => p !== front && p.conn?.body).reduce<Part | undefined>((a, p) => (!a || p.pos > a.pos ? p : a), undefined);
      victim?.conn!.body!.destroy(new Preempted('preempted'));
    } else {
      this.pump();
    }
  }

  private connectionsChanged(delta: number): void {
    this.openConnections += delta;
    this.opts.parallel.onConnections?.(this.openConnections);
  }
}

/** The CDN's signed URL expired (401, 403 or 410 from the CDN). */
class UrlExpired extends Error {}

/**
 * Where a part's connection reads: straight into the window's slab for the part's next byte.
 * Nothing to lend (window full, bandwidth cap) pauses the socket; the part's end stops it.
 */
class PartSink implements ByteSink {
  constructor(
    private readonly download: ParallelDownload,
    private readonly part: Part,
  ) {}

  lend(): Buffer | undefined {
    const { part } = this;
    if (part.pos >= part.end || !part.conn) return undefined;
    const slab = (this.download.limits?.delayMs() ?? 0) > 0 ? undefined : this.download.slabAt(part.pos);
    part.conn.blocked = !slab;
    if (!slab) return undefined;
    const from = part.pos - slab.start;
    const to = Math.min(part.end, slab.start + slab.length) - slab.start;
    return slab.buf.subarray(from, Math.min(to, from + (this.download.limits?.readSize(to - from) ?? to - from)));
  }

  commit(n: number): void {
    if (n > 0) this.download.received(this.part, n);
  }

  async writable(): Promise<void> {
    for (;;) {
      const failure = this.download.failure;
      if (failure) throw failure;
      if (this.part.pos >= this.part.end) throw new PartWhole('the part is whole');
      const wait = this.download.limits?.delayMs() ?? 0;
      if (wait > 0) {
        if (this.part.conn) this.part.conn.blocked = true;
        await sleep(wait);
        continue;
      }
      if (this.download.slabAt(this.part.pos)) {
        if (this.part.conn) this.part.conn.blocked = false;
        return;
      }
      if (this.part.conn) this.part.conn.blocked = true;
      await this.download.nextRelease();
    }
  }
}

function slabIndex(pos: number): number {
  return Math.floor(pos / SLAB_BYTES);
}

function alignUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}

function alignDown(n: number, to: number): number {
  return Math.floor(n / to) * to;
}
