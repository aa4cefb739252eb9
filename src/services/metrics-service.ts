import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { Counter, Histogram, Registry } from 'prom-client';
import type { PullMetricsSnapshot, PullMetricsStore } from '../queue/pull-metrics-store.js';
import type { RegistryStore } from '../registry/registry-store.js';

export interface MetricsServiceDeps {
  redis: Redis;
  /** The BullMQ queues by name (pull, verify, warm). */
  queues: Record<string, Queue>;
  pullMetrics: PullMetricsStore;
  registry: RegistryStore;
}

/** What one scrape reads from Redis and the registry, once, before anything is formatted. */
interface Snapshot {
  redisUp: boolean;
  pulls?: PullMetricsSnapshot;
  counts: Record<string, Record<string, number>>;
  workers: Record<string, number>;
  registryRows?: number;
}

const JOB_STATES = ['waiting', 'prioritized', 'delayed', 'active', 'completed', 'failed'] as const;

/**
 * `GET /metrics`. Pull counters, queue depths and workers are read from Redis at each scrape,
 * so every API process answers the same; only the HTTP metrics are this process's own.
 */
export class MetricsService {
  private readonly http = new Registry();
  readonly httpRequests = new Counter({ name: 'ferry_http_requests_total', help: 'HTTP requests answered by this API process, by route and status', labelNames: ['method', 'route', 'status'], registers: [this.http] });
  readonly httpDuration = new Histogram({
    name: 'ferry_http_request_duration_seconds',
    help: 'HTTP request latency in this API process, by route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    registers: [this.http],
  });

  constructor(private readonly deps: MetricsServiceDeps) {}

  readonly contentType = this.http.contentType;

  /** Counts one answered request (called from an onResponse hook). */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpDuration.observe({ method, route }, seconds);
  }

  /** The whole exposition text. Never fails: with Redis down it says `ferry_redis_up 0`. */
  async render(): Promise<string> {
    const snap = await this.snapshot();
    const scrape = new Registry();
    for (const m of derivedMetrics(snap)) scrape.registerMetric(m as never);
    return Registry.merge([scrape, this.http]).metrics();
  }

  private async snapshot(): Promise<Snapshot> {
    const snap: Snapshot = { redisUp: false, counts: {}, workers: {} };
    const [up, rows] = await Promise.all([
      withTimeout(this.deps.redis.ping(), 1000).then((p) => p === 'PONG', () => false),
      this.deps.registry.list().then((r) => r.length, () => undefined),
    ]);
    snap.redisUp = up;
    snap.registryRows = rows;
    if (!up) return snap;
    const reads: Array<Promise<void>> = [
      this.deps.pullMetrics.read().then((p) => void (snap.pulls = p)),
      ...Object.entries(this.deps.queues).flatMap(([name, q]) => [
        q.getJobCounts(...JOB_STATES).then((c) => void (snap.counts[name] = c)),
        q.getWorkersCount().then((n) => void (snap.workers[name] = n)),
      ]),
    ];
    await Promise.all(reads.map((r) => withTimeout(r, 2000).catch(() => undefined)));
    return snap;
  }
}

type Sample = { labels?: Record<string, string | number>; value: number; metricName?: string };
interface DerivedMetric {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  get(): { name: string; help: string; type: string; values: Sample[]; aggregator: 'sum' };
}

function metric(name: string, help: string, type: DerivedMetric['type'], values: Sample[]): DerivedMetric {
  return { name, help, type, get: () => ({ name, help, type, values, aggregator: 'sum' }) };
}

/** prom-client renders any object with get(); these are built from one snapshot per scrape. */
function derivedMetrics(s: Snapshot): DerivedMetric[] {
  const out = [metric('ferry_redis_up', '1 when Redis answered this scrape\'s PING within 1 s', 'gauge', [{ value: s.redisUp ? 1 : 0 }])];
  if (s.registryRows !== undefined) out.push(metric('ferry_registry_rows', 'rows in registry.toml', 'gauge', [{ value: s.registryRows }]));
  const queues = Object.keys(s.counts);
  if (queues.length) {
    out.push(
      metric('ferry_queue_jobs', 'jobs per queue and BullMQ state', 'gauge', queues.flatMap((q) => JOB_STATES.map((state) => ({ labels: { queue: q, state }, value: s.counts[q][state] ?? 0 })))),
      metric('ferry_queue_depth', 'jobs waiting for a worker (waiting + prioritized + delayed)', 'gauge', queues.map((q) => ({ labels: { queue: q }, value: (s.counts[q].waiting ?? 0) + (s.counts[q].prioritized ?? 0) + (s.counts[q].delayed ?? 0) }))),
    );
    if (s.counts.pull) out.push(metric('ferry_pulls_active', 'pulls running now', 'gauge', [{ value: s.counts.pull.active ?? 0 }]));
  }
  const workerQueues = Object.keys(s.workers);
  if (workerQueues.length) out.push(metric('ferry_workers_connected', 'worker connections per queue (any host)', 'gauge', workerQueues.map((q) => ({ labels: { queue: q }, value: s.workers[q] }))));
  const p = s.pulls;
  if (p) {
    out.push(
      metric('ferry_pulls_total', 'pulls that ended, by outcome', 'counter', (['completed', 'failed', 'cancelled'] as const).map((outcome) => ({ labels: { outcome }, value: p.outcomes[outcome] }))),
      metric('ferry_pull_bytes_total', 'bytes downloaded by pulls that ended', 'counter', [{ value: p.bytesPulled }]),
      metric('ferry_pull_duration_seconds', 'pull duration, first start to end', 'histogram', [
        ...p.durationBuckets.map((b) => ({ metricName: 'ferry_pull_duration_seconds_bucket', labels: { le: b.le }, value: b.count })),
        { metricName: 'ferry_pull_duration_seconds_bucket', labels: { le: '+Inf' }, value: p.durationCount },
        { metricName: 'ferry_pull_duration_seconds_sum', value: p.durationSum },
        { metricName: 'ferry_pull_duration_seconds_count', value: p.durationCount },
      ]),
      metric('ferry_queue_stalled_jobs_total', 'jobs taken back from a worker that stopped renewing its lock, per queue', 'counter', [...new Set([...workerQueues, ...Object.keys(p.stalled)])].map((q) => ({ labels: { queue: q }, value: p.stalled[q] ?? 0 }))),
    );
  }
  return out;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timeout')), ms)))]).finally(() => clearTimeout(timer));
}
