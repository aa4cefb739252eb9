import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { startWorkers, type RunningWorkers } from '../../src/app/start-workers.js';
import { loadConfig } from '../../src/config/load-config.js';
import { startFakeHub, type FakeHub, type FakeRepo } from '../support/fake-hub.js';
import { dropPrefix, TEST_CONFIG_TOML } from '../support/pull-harness.js';
import { makeTempHome } from '../support/temp-home.js';

const REPO: FakeRepo = { id: 'acme/failover-GGUF', revision: 'f'.repeat(40), files: [{ path: 'Failover-Q4_K_M.gguf', size: 4 * 1024 * 1024 + 9, seed: 21 }] };
const FILE = REPO.files[0].path;

describe('hf_endpoints: failover for Ferry\'s own pulls', () => {
  let down: FakeHub;
  let failing: FakeHub;
  let lying: FakeHub;
  let good: FakeHub;
  let temp: Awaited<ReturnType<typeof makeTempHome>>;
  let ctx: FerryContext;
  let app: FastifyInstance;
  let workers: RunningWorkers;
  let workerCtx: FerryContext;
  const log: string[] = [];

  beforeAll(async () => {
    [down, failing, lying, good] = await Promise.all([startFakeHub(), startFakeHub(), startFakeHub(), startFakeHub()]);
    for (const hub of [down, failing, lying, good]) hub.addRepo(REPO);
    await down.close(); // connect refused from now on
    failing.fault(REPO.id, FILE, { kind: 'status', status: 500, times: 1000 });
    lying.fault(REPO.id, FILE, { kind: 'corrupt', times: 1000 });
    temp = await makeTempHome({ HF_ENDPOINT: '' });
    await mkdir(temp.home, { recursive: true });
    const endpoints = [down, failing, lying, good].map((h) => JSON.stringify(h.url)).join(', ');
    await writeFile(join(temp.home, 'config.toml'), `${TEST_CONFIG_TOML}hf_endpoints = [${endpoints}]\n`);
    ctx = new FerryContext(loadConfig(temp.env));
    app = await buildApp({ services: await ctx.apiServices() });
    workerCtx = new FerryContext(loadConfig(temp.env));
    workers = await startWorkers(workerCtx, { log: (m) => log.push(m) });
  });
  afterAll(async () => {
    await workers?.close();
    await workerCtx?.close();
    await app?.close();
    if (ctx) await dropPrefix(ctx.config.queuePrefix);
    await ctx?.close();
    await Promise.all([failing, lying, good].map((h) => h?.close()));
    await temp?.cleanup();
  });

  async function waitDone(id: string) {
    for (let i = 0; i < 600; i++) {
      const status = (await app.inject({ method: 'GET', url: `/api/models/${id}/pull/status` })).json();
      if (['completed', 'failed'].includes(status.state)) return status;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`pull of ${id} did not finish; log: ${log.slice(-5).join(' | ')}`);
  }

  it('first endpoint down, the next answering 500, the next serving bad bytes: the pull completes from the last with the right digest', async () => {
    expect(loadConfig(temp.env).hfEndpoints).toHaveLength(4);
    const res = await app.inject({ method: 'POST', url: '/api/models/failover/pull', payload: { hf_repo: REPO.id, hf_file: FILE } });
    expect(res.statusCode, res.body).toBe(202);
    const done = await waitDone('failover');
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const expected = await good.sha256(REPO.id, FILE);
    expect(done.sha256).toBe(expected);
    expect(createHash('sha256').update(await readFile(done.path)).digest('hex')).toBe(expected);
    // The 500s and the bad bytes were really asked for, and the good hub's CDN sent the body.
    expect(failing.log.some((l) => l.method === 'GET' && l.status === 500)).toBe(true);
    expect(lying.log.some((l) => l.host === 'cdn' && l.method === 'GET' && l.status === 200)).toBe(true);
    expect(good.log.filter((l) => l.host === 'cdn' && l.method === 'GET')).toHaveLength(1);
  });

  it('a failed endpoint is skipped for a while: a second pull asks the failing and lying ones for no file', async () => {
    const failingBefore = failing.log.length;
    const lyingBefore = lying.log.length;
    const res = await app.inject({ method: 'POST', url: '/api/models/failover-two/pull', payload: { hf_repo: REPO.id, hf_file: FILE } });
    expect(res.statusCode, res.body).toBe(202);
    const done = await waitDone('failover-two');
    expect(done.state, JSON.stringify(done)).toBe('completed');
    // The worker's pool remembers: no resolve and no body asked of them (the API's own pre-flight listing has a pool of its own).
    const fileRequests = (log: FakeHub['log']) => log.filter((l) => l.host === 'cdn' || l.path.includes('/resolve/'));
    expect(fileRequests(failing.log.slice(failingBefore))).toEqual([]);
    expect(fileRequests(lying.log.slice(lyingBefore))).toEqual([]);
    expect(good.log.filter((l) => l.host === 'cdn' && l.method === 'GET')).toHaveLength(2);
  });
});
