import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis-server.js';
import { parsedRegistry, sha256OfFile } from '../support/registry-check.js';

const REPO = 'acme/restart-GGUF';
const FILE = 'Restart-Q4_K_M.gguf';
const SIZE = 5 * 1024 * 1024 + 7;
const LOCK_MS = 2000;
/** Bytes a resume may fetch again: what was in flight when the first runner stopped (1 MB/s throttle: well under this). */
const ONE_RESUME_OVERLAP = 1024 * 1024;
const CONFIG = TEST_CONFIG_TOML.replace('job_lock_ms = 3000', `job_lock_ms = ${LOCK_MS}`);

const cdnBytes = (h: PullHarness) => h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET').reduce((n, l) => n + l.bytes, 0);

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function expectCompletedOnce(h: PullHarness): Promise<void> {
  const done = await h.waitForState('restart', ['completed', 'failed', 'cancelled'], 60_000);
  expect(done.state, JSON.stringify(done)).toBe('completed');
  const expected = await h.hub.sha256(REPO, FILE);
  expect(done.sha256).toBe(expected);
  const rows = await parsedRegistry(h.ctx.config.registryDir);
  expect(Object.keys(rows)).toEqual(['restart']);
  expect(await sha256OfFile(rows.restart.path as string)).toBe(expected);
  expect(cdnBytes(h), `CDN GETs: ${JSON.stringify(h.hub.log.filter((l) => l.host === 'cdn').map((l) => [l.range, l.bytes]))}`).toBeLessThanOrEqual(SIZE + ONE_RESUME_OVERLAP);
  // And it stays completed: no second runner finishes later and rewrites anything.
  await new Promise((r) => setTimeout(r, LOCK_MS));
  expect((await h.waitForState('restart', ['completed'])).sha256).toBe(expected);
  expect(await sha256OfFile(rows.restart.path as string)).toBe(expected);
}

describe.each([['in the worker', CONFIG], ['on a download thread', `${CONFIG}download_thread_min_bytes = 0\n`]])('Redis goes away mid-pull, %s', (_mode, configToml) => {
  let redis: PrivateRedis;
  let h: PullHarness;
  beforeAll(async () => {
    redis = await startPrivateRedis({ persist: true });
  });
  afterAll(async () => redis?.close());
  beforeEach(async () => {
    h = await startPullHarness({ configToml, redisUrl: redis.url });
    h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 71 }] });
    h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 1024 * 1024 });
  });
  afterEach(async () => h.cleanup());

  it('restarted for longer than the job lock: one runner at a time, the file completes once', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/models/restart/pull', payload: { hf_repo: REPO, hf_file: FILE } });
    expect(res.statusCode, res.body).toBe(202);
    await waitFor('1.5 MB from the CDN', () => cdnBytes(h) > 1_500_000);
    await redis.stop();
    const stoppedAt = Date.now();
    // The worker cannot renew its lock: it stops within half the lock period, long before Redis is back.
    await new Promise((r) => setTimeout(r, LOCK_MS / 2 + 500));
    const frozen = cdnBytes(h);
    await new Promise((r) => setTimeout(r, 1000));
    expect(cdnBytes(h), 'bytes still flowing with Redis down').toBeLessThanOrEqual(frozen + 64 * 1024);
    await new Promise((r) => setTimeout(r, Math.max(0, LOCK_MS * 1.5 - (Date.now() - stoppedAt))));
    await redis.start();
    await expectCompletedOnce(h);
  });

  it('flushed mid-pull: the old run stops (no invisible download), a new pull resumes its partial file', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/models/restart/pull', payload: { hf_repo: REPO, hf_file: FILE } });
    expect(res.statusCode, res.body).toBe(202);
    await waitFor('1.5 MB from the CDN', () => cdnBytes(h) > 1_500_000);
    await redis.flush();
    // The job is gone: its runner notices within a quarter of the lock period and stops fetching.
    await new Promise((r) => setTimeout(r, LOCK_MS / 2 + 500));
    const frozen = cdnBytes(h);
    await new Promise((r) => setTimeout(r, 1000));
    expect(cdnBytes(h), 'the wiped job kept downloading').toBeLessThanOrEqual(frozen + 64 * 1024);
    expect((await h.app.inject({ method: 'GET', url: '/api/models/restart/pull/status' })).statusCode).toBe(404);
    // Pulled again: resumes from the partial file the stopped run left.
    const again = await h.app.inject({ method: 'POST', url: '/api/models/restart/pull', payload: { hf_repo: REPO, hf_file: FILE } });
    expect(again.statusCode, again.body).toBe(202);
    await expectCompletedOnce(h);
    const gets = h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET');
    expect(gets.length).toBeGreaterThanOrEqual(2);
    expect(gets.at(-1)!.range).toMatch(/^bytes=[1-9]\d*-$/);
  });
});
