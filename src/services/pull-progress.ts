import type { PullFileStatus, PullProgress } from '../queue/pull-status.js';

/** Reports at most twice a second (plus `flush`), never per chunk: each report is a Redis Lua call. */
export const PROGRESS_INTERVAL_MS = 500;
/** Throughput is averaged over this window so the ETA does not jump with every chunk. */
const WINDOW_MS = 5000;

/**
 * Tracks a pull's bytes across its files and sends snapshots to `sink` (job.updateProgress).
 * The sink's promise also carries the cancel check, so a cancel is noticed within one tick.
 */
export class PullProgressTracker {
  readonly startedAt = Math.floor(Date.now() / 1000);
  private samples: Array<[number, number]> = [];
  private lastSent = 0;
  private sending?: Promise<void>;
  state: PullProgress['state'] = 'running';
  revision?: string;
  worker?: string;
  /** Open connections per file. */
  private readonly connectionsOf: number[] = [];

  constructor(
    readonly files: PullFileStatus[],
    private readonly sink: (p: PullProgress) => Promise<void>,
  ) {}

  get bytesTotal(): number {
    return this.files.reduce((n, f) => n + f.bytes_total, 0);
  }

  get bytesDone(): number {
    return this.files.reduce((n, f) => n + f.bytes_done, 0);
  }

  /** A file's open connections changed; reported with the next snapshot. */
  setFileConnections(index: number, n: number): void {
    this.connectionsOf[index] = n;
  }

  /** Called per chunk; cheap unless a report is due. */
  setFileBytes(index: number, bytes: number): void {
    this.files[index].bytes_done = bytes;
    const now = Date.now();
    if (now - this.lastSent >= PROGRESS_INTERVAL_MS) void this.report(now);
  }

  async flush(extra: Partial<PullProgress> = {}): Promise<void> {
    await this.sending;
    await this.report(Date.now(), extra);
  }

  snapshot(extra: Partial<PullProgress> = {}): PullProgress {
    return {
      state: this.state,
      bytes_total: this.bytesTotal,
      bytes_downloaded: this.bytesDone,
      throughput_bps: this.throughput(),
      started_at: this.startedAt,
      revision: this.revision,
      files: this.files.map((f) => ({ ...f })),
      worker: this.worker,
      connections: this.connectionsOf.reduce((a, n) => a + (n ?? 0), 0),
      ...extra,
    };
  }

  private throughput(): number {
    const now = Date.now();
    this.samples.push([now, this.bytesDone]);
    while (this.samples.length > 2 && now - this.samples[0][0] > WINDOW_MS) this.samples.shift();
    const [t0, b0] = this.samples[0];
    return now > t0 ? Math.round(((this.bytesDone - b0) * 1000) / (now - t0)) : 0;
  }

  private async report(now: number, extra: Partial<PullProgress> = {}): Promise<void> {
    if (this.sending && Object.keys(extra).length === 0) return; // one report in flight is enough
    this.lastSent = now;
    const p = this.sink(this.snapshot(extra)).catch(() => undefined);
    this.sending = p;
    await p;
    if (this.sending === p) this.sending = undefined;
  }
}
