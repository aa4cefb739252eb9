import type { Redis } from 'ioredis';

/** Upper bounds (seconds) of the pull duration histogram: a small GGUF to a 70 GB model. */
export const PULL_DURATION_BUCKETS_S = [1, 5, 15, 60, 300, 900, 3600, 10800] as const;

export type PullOutcome = 'completed' | 'failed' | 'cancelled';

export interface PullMetricsSnapshot {
  outcomes: Record<PullOutcome, number>;
  bytesPulled: number;
  /** Cumulative counts per upper bound (Prometheus' `le`), plus count and sum. */
  durationBuckets: Array<{ le: number; count: number }>;
  durationCount: number;
  durationSum: number;
  /** Jobs taken back from a dead worker, per queue. */
  stalled: Record<string, number>;
}

/**
 * Pull counters kept in Redis under the queue prefix: workers add to them as pulls end, and
 * any API process reads them for /metrics, so every API process answers the same numbers
 * (process-local counters would each see only their own share, and none of the workers').
 * One hash; every update is one MULTI.
 */
export class PullMetricsStore {
  private readonly key: string;

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = `${prefix}:ferry:metrics`;
  }

  async recordOutcome(outcome: PullOutcome, bytes: number, seconds: number): Promise<void> {
    const m = this.redis.multi().hincrby(this.key, `pulls:${outcome}`, 1).hincrby(this.key, 'bytes_pulled', Math.max(0, Math.round(bytes)));
    m.hincrby(this.key, 'duration:count', 1).hincrbyfloat(this.key, 'duration:sum', Math.max(0, seconds));
    for (const le of PULL_DURATION_BUCKETS_S) if (seconds <= le) m.hincrby(this.key, `duration:le:${le}`, 1);
    await m.exec();
  }

  async recordStalled(queue: string): Promise<void> {
    await this.redis.hincrby(this.key, `stalled:${queue}`, 1);
  }

  async read(): Promise<PullMetricsSnapshot> {
    const h = await this.redis.hgetall(this.key);
    const n = (field: string) => Number(h[field] ?? 0);
    const stalled: Record<string, number> = {};
    for (const [field, value] of Object.entries(h)) if (field.startsWith('stalled:')) stalled[field.slice(8)] = Number(value);
    return {
      outcomes: { completed: n('pulls:completed'), failed: n('pulls:failed'), cancelled: n('pulls:cancelled') },
      bytesPulled: n('bytes_pulled'),
      durationBuckets: PULL_DURATION_BUCKETS_S.map((le) => ({ le, count: n(`duration:le:${le}`) })),
      durationCount: n('duration:count'),
      durationSum: n('duration:sum'),
      stalled,
    };
  }
}
