import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';
import { REPO_ROOT } from '../support/worker-process.js';

const FAKE_FLM = join(REPO_ROOT, 'test/fixtures/fake-flm');

describe('FLM tag pulls through the queue', () => {
  let h: PullHarness;
  let flmModels: string;
  beforeEach(async () => {
    h = await startPullHarness({ worker: false, configToml: `${TEST_CONFIG_TOML}flm_bin = "${FAKE_FLM}"\nflm_model_path = "/tmp/placeholder"\n` });
    flmModels = join(h.home, 'flm-models');
    // Rewrite the config now that the home is known, and start the worker afterwards.
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(h.home, 'config.toml'), `${TEST_CONFIG_TOML}flm_bin = "${FAKE_FLM}"\nflm_model_path = "${flmModels}"\n`);
  });
  afterEach(async () => {
    delete process.env.FAKE_FLM_SPEED;
    delete process.env.FAKE_FLM_FAIL;
    await h.cleanup();
  });

  it('runs flm pull, reports whole-model progress and writes hal0\'s entry', async () => {
    process.env.FAKE_FLM_SPEED = String(8 * 1024 * 1024);
    await h.startWorker();
    const { app } = await rebuild(h);
    const res = await app.inject({ method: 'POST', url: '/api/models/qwen3:0.6b/pull' });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ model_id: 'qwen3:0.6b', source: 'flm' });
    const done = await waitState(app, 'qwen3:0.6b', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect(done.bytes_total).toBeGreaterThan(0);
    expect(done.bytes_downloaded).toBe(done.bytes_total);
    const entry = (await app.inject({ method: 'GET', url: '/api/models/qwen3:0.6b' })).json();
    expect(entry).toMatchObject({ id: 'qwen3:0.6b', capabilities: ['chat'], backends: ['npu'], metadata: { runtime: 'flm' } });
    expect(entry.path.startsWith(flmModels)).toBe(true);
    expect((await readdir(entry.path)).length).toBeGreaterThan(0);
    await app.close();
  });

  it('refuses an unknown tag before anything runs', async () => {
    const { app } = await rebuild(h);
    const res = await app.inject({ method: 'POST', url: '/api/models/nosuch:1b/pull' });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('source.not_found');
    expect(await readdir(flmModels).catch(() => [])).toEqual([]);
    await app.close();
  });

  it('turns [ERROR] and a non-zero exit into the job error', async () => {
    process.env.FAKE_FLM_FAIL = '1';
    await h.startWorker();
    const { app } = await rebuild(h);
    await app.inject({ method: 'POST', url: '/api/models/llama3.2:1b/pull' });
    const done = await waitState(app, 'llama3.2:1b', ['completed', 'failed']);
    expect(done.state).toBe('failed');
    expect(done.error_code).toBe('source.flm_failed');
    expect(done.error).toContain('Model download failed'); // the [ERROR] line's text
    expect((await app.inject({ method: 'GET', url: '/api/models/llama3.2:1b' })).statusCode).toBe(404);
    await app.close();
  });
});

/** An API app on the rewritten config (the harness's app was built before flm_model_path was known). */
async function rebuild(h: PullHarness) {
  const { buildApp } = await import('../../src/api/build-app.js');
  const { FerryContext } = await import('../../src/app/create-context.js');
  const { loadConfig } = await import('../../src/config/load-config.js');
  const ctx = new FerryContext(loadConfig(h.env));
  const app = await buildApp({ services: await ctx.apiServices() });
  app.addHook('onClose', async () => ctx.close());
  return { app };
}

async function waitState(app: Awaited<ReturnType<typeof rebuild>>['app'], id: string, states: string[]) {
  const deadline = Date.now() + 30_000;
  let last;
  while (Date.now() < deadline) {
    const r = await app.inject({ method: 'GET', url: `/api/models/${id}/pull/status` });
    if (r.statusCode === 200) {
      last = r.json();
      if (states.includes(last.state)) return last;
    }
    await new Promise((res) => setTimeout(res, 50));
  }
  throw new Error(`timeout: ${JSON.stringify(last)}`);
}
