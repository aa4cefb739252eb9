import { createRequire } from 'node:module';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { loadConfig } from '../../src/config/load-config.js';
import { Redis } from 'ioredis';
import { MetricsService } from '../../src/services/metrics-service.js';
import { PullMetricsStore } from '../../src/queue/pull-metrics-store.js';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';

type Family = { name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string; buckets?: Record<string, string>; count?: string; sum?: string }> };
const parse = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

/** Every non-comment line is `name{labels} value`; every family has HELP and TYPE first. */
function checkExposition(text: string): void {
  const lines = text.trimEnd().split('\n');
  for (const line of lines) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? -?(\d+(\.\d+)?(e[-+]?\d+)?|\+Inf|NaN)$/);
  }
  const declared = lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
  expect(new Set(declared).size).toBe(declared.length);
}

function sample(families: Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  const fam = families.find((f) => f.name === name);
  const m = fam?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m?.value === undefined ? undefined : Number(m.value);
}

describe('GET /metrics', () => {
  let h: PullHarness;
  let other: { ctx: FerryContext; app: FastifyInstance };
  beforeAll(async () => {
    h = await startPullHarness();
    h.hub.addRepo({ id: 'acme/m-GGUF', files: [{ path: 'm-Q4_K_M.gguf', size: 123_456, seed: 8 }] });
    h.hub.addRepo({ id: 'meta/gated', gated: true, files: [{ path: 'g.gguf', size: 100, seed: 1 }] });
    // A second API process on the same Redis prefix: it must answer the same pull numbers.
    const ctx = new FerryContext(loadConfig(h.env));
    other = { ctx, app: await buildApp({ services: await ctx.apiServices() }) };
  });
  afterAll(async () => {
    await other.app.close();
    await other.ctx.close();
    await h.cleanup();
  });

  it('pulls by outcome, bytes, duration histogram, queues, workers, registry rows, HTTP and Redis; same pull numbers from every API process', async () => {
    expect((await h.app.inject({ method: 'POST', url: '/api/models/m/pull', payload: { hf_repo: 'acme/m-GGUF', hf_file: 'm-Q4_K_M.gguf' } })).statusCode).toBe(202);
    await h.waitForState('m', ['completed']);
    await h.app.inject({ method: 'POST', url: '/api/models/g/pull', payload: { hf_repo: 'meta/gated', hf_file: 'g.gguf' } });
    await h.waitForState('g', ['failed']);
    await new Promise((r) => setTimeout(r, 300)); // the outcome counters are written just after the job's state

    const res = await h.app.inject('/metrics');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    checkExposition(res.body);
    const f = parse(res.body);
    expect(sample(f, 'ferry_redis_up')).toBe(1);
    expect(sample(f, 'ferry_pulls_total', { outcome: 'completed' })).toBe(1);
    expect(sample(f, 'ferry_pulls_total', { outcome: 'failed' })).toBe(1);
    expect(sample(f, 'ferry_pulls_total', { outcome: 'cancelled' })).toBe(0);
    expect(sample(f, 'ferry_pull_bytes_total')).toBe(123_456);
    const hist = f.find((x) => x.name === 'ferry_pull_duration_seconds')!;
    expect(hist.type).toBe('HISTOGRAM');
    expect(Number(hist.metrics[0].count)).toBe(2);
    expect(Number(hist.metrics[0].buckets!['+Inf'])).toBe(2);
    expect(Number(hist.metrics[0].buckets!['10800'])).toBe(2);
    expect(sample(f, 'ferry_pulls_active')).toBe(0);
    expect(sample(f, 'ferry_queue_depth', { queue: 'pull' })).toBe(0);
    expect(sample(f, 'ferry_queue_jobs', { queue: 'pull', state: 'completed' })).toBe(1);
    expect(sample(f, 'ferry_queue_jobs', { queue: 'pull', state: 'failed' })).toBe(1);
    expect(sample(f, 'ferry_queue_stalled_jobs_total', { queue: 'pull' })).toBe(0);
    expect(sample(f, 'ferry_workers_connected', { queue: 'pull' })).toBe(1);
    expect(sample(f, 'ferry_workers_connected', { queue: 'verify' })).toBe(1);
    expect(sample(f, 'ferry_registry_rows')).toBe(1);
    expect(sample(f, 'ferry_http_requests_total', { method: 'POST', route: '/api/models/:id/pull', status: '202' })).toBe(2);
    expect(sample(f, 'ferry_http_requests_total', { method: 'GET', route: '/api/models/:id/pull/status' })).toBeGreaterThan(0);
    // (the parser drops a labelled histogram's labels, so this one is read from the text)
    expect(res.body).toContain('ferry_http_request_duration_seconds_count{method="POST",route="/api/models/:id/pull"} 2');
    expect(f.find((x) => x.name === 'ferry_http_request_duration_seconds')?.type).toBe('HISTOGRAM');

    const theirs = parse((await other.app.inject('/metrics')).body);
    for (const outcome of ['completed', 'failed']) expect(sample(theirs, 'ferry_pulls_total', { outcome })).toBe(sample(f, 'ferry_pulls_total', { outcome }));
    expect(sample(theirs, 'ferry_pull_bytes_total')).toBe(123_456);
    // HTTP counts are each process's own: the other one answered no pull request.
    expect(sample(theirs, 'ferry_http_requests_total', { method: 'POST', route: '/api/models/:id/pull' })).toBeUndefined();
  });

  it('with Redis down the scrape still answers: ferry_redis_up 0 and what needs no Redis', async () => {
    const dead = new Redis('redis://127.0.0.1:1', { enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
    dead.on('error', () => undefined);
    try {
      const service = new MetricsService({ redis: dead, queues: {}, pullMetrics: new PullMetricsStore(dead, h.ctx.config.queuePrefix), registry: h.ctx.registry });
      const text = await service.render();
      checkExposition(text);
      const f = parse(text);
      expect(sample(f, 'ferry_redis_up')).toBe(0);
      expect(sample(f, 'ferry_registry_rows')).toBe(1);
      expect(f.find((x) => x.name === 'ferry_pulls_total')).toBeUndefined(); // unknown, not a false 0
    } finally {
      dead.disconnect();
    }
  });
});
