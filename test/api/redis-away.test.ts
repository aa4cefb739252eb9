import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { startWorkers, type RunningWorkers } from '../../src/app/start-workers.js';
import { loadConfig } from '../../src/config/load-config.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { TEST_CONFIG_TOML } from '../support/pull-harness.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { makeTempHome } from '../support/temp-home.js';

const PASSWORD = 'sekrit-redis-pass-1234';

let redis: PrivateRedis;
let hub: FakeHub;
let ctx: FerryContext;
let app: FastifyInstance;
let workers: RunningWorkers;
let workerCtx: FerryContext;
let cleanup: () => Promise<void>;
const workerLog: string[] = [];

beforeAll(async () => {
  hub = await startFakeHub();
  hub.addRepo({ id: 'acme/away-GGUF', files: [{ path: 'away-Q4_K_M.gguf', size: 256 * 1024, seed: 3 }, { path: 'after-Q4_K_M.gguf', size: 256 * 1024, seed: 4 }] });
  const temp = await makeTempHome({ HF_ENDPOINT: hub.url });
  await mkdir(join(temp.home, 'redis'), { recursive: true });
  redis = await startPrivateRedis({ password: PASSWORD, aofDir: join(temp.home, 'redis') });
  await writeFile(join(temp.home, 'config.toml'), TEST_CONFIG_TOML);
  const env = { ...temp.env, REDIS_URL: redis.url };
  ctx = new FerryContext(loadConfig(env));
  app = await buildApp({ services: await ctx.apiServices(), dashboardQueues: await ctx.dashboardQueues(), redisUrl: redis.url });
  workerCtx = new FerryContext(loadConfig(env));
  workers = await startWorkers(workerCtx, { log: (m) => workerLog.push(m) });
  cleanup = async () => {
    redis.thaw();
    await workers.close().catch(() => undefined);
    await app.close();
    await workerCtx.close();
    await ctx.close();
    await redis.stop().catch(() => undefined);
    await hub.close();
    await temp.cleanup();
  };
});
afterAll(async () => cleanup());

/** Routes that read or write Redis, each with a request that succeeds while Redis is up. */
const REDIS_ROUTES = [
  { method: 'GET' as const, url: '/api/pulls' },
  { method: 'GET' as const, url: '/api/models/away-q4_k_m/pull/status' },
  { method: 'GET' as const, url: '/api/models/away-q4_k_m/pull/stream' },
  { method: 'POST' as const, url: '/api/models/away-q4_k_m/pull/cancel' },
  { method: 'POST' as const, url: '/api/models/other/pull', payload: { hf_repo: 'acme/away-GGUF', hf_file: 'after-Q4_K_M.gguf' } },
  { method: 'GET' as const, url: '/api/models/away-q4_k_m/verify/status' },
  { method: 'GET' as const, url: '/admin/queues/api/queues' },
];

async function waitCompleted(id: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await app.inject({ method: 'GET', url: `/api/models/${id}/pull/status` });
    if (res.statusCode === 200 && res.json().state === 'completed') return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${id} did not complete; worker log: ${workerLog.slice(-5).join(' | ')}`);
}

async function expectAllUnavailable(what: string): Promise<void> {
  for (const route of REDIS_ROUTES) {
    const t0 = Date.now();
    const res = await app.inject(route);
    const ms = Date.now() - t0;
    expect({ what, route: route.url, status: res.statusCode, code: res.json().error?.code, fast: ms < 2000 }).toEqual({ what, route: route.url, status: 503, code: 'redis.unavailable', fast: true });
    expect(res.body).toContain(`redis://***@127.0.0.1:${redis.port}`);
    expect(res.body).not.toContain(PASSWORD);
  }
  const t0 = Date.now();
  const health = await app.inject({ method: 'GET', url: '/healthz' });
  expect(Date.now() - t0).toBeLessThan(2000);
  expect(health.statusCode).toBe(503);
  expect(health.json()).toMatchObject({ ok: false, redis: { ok: false }, registry: { ok: true } });
  expect(health.body).not.toContain(PASSWORD);
}

async function expectAllBack(): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await app.inject({ method: 'GET', url: '/healthz' })).statusCode !== 200) {
    if (Date.now() > deadline) throw new Error('healthz did not come back');
    await new Promise((r) => setTimeout(r, 100));
  }
  expect((await app.inject({ method: 'GET', url: '/api/pulls' })).statusCode).toBe(200);
  expect((await app.inject({ method: 'GET', url: '/api/models/away-q4_k_m/pull/status' })).json()).toMatchObject({ state: 'completed' });
  expect((await app.inject({ method: 'GET', url: '/admin/queues/api/queues' })).statusCode).toBe(200);
}

describe('Redis away (a private, password-protected redis-server)', () => {
  it('works with a password in REDIS_URL', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/models/away-q4_k_m/pull', payload: { hf_repo: 'acme/away-GGUF', hf_file: 'away-Q4_K_M.gguf' } });
    expect(res.statusCode).toBe(202);
    await waitCompleted('away-q4_k_m');
    await expectAllBack();
  });

  it('stopped: every Redis route answers 503 redis.unavailable within 2 s; restarted: 200 again', async () => {
    await redis.stop();
    await expectAllUnavailable('stopped');
    await redis.start();
    await expectAllBack();
  });

  it('frozen (SIGSTOP): 503 within 2 s; thawed: 200 again', async () => {
    redis.freeze();
    try {
      await expectAllUnavailable('frozen');
    } finally {
      redis.thaw();
    }
    await expectAllBack();
  });

  it('the worker reconnected by itself: a pull queued after the outages completes', async () => {
    const res = await app.inject({ method: 'POST', url: '/api/models/after-q4_k_m/pull', payload: { hf_repo: 'acme/away-GGUF', hf_file: 'after-Q4_K_M.gguf' } });
    expect(res.statusCode).toBe(202);
    await waitCompleted('after-q4_k_m', 30_000);
    expect(workerLog.join('\n')).not.toContain(PASSWORD);
  });
});
