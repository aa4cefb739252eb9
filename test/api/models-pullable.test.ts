import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { loadConfig } from '../../src/config/load-config.js';
import { dropPrefix } from '../support/pull-harness.js';
import { makeTempHome } from '../support/temp-home.js';
import { REPO_ROOT } from '../support/worker-process.js';

const FAKE_FLM = join(REPO_ROOT, 'test/fixtures/fake-flm');
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

/** GET /api/models on a registry with one GGUF row and one FLM row, with the given flm binary. */
async function listWith(flmBin: string) {
  const temp = await makeTempHome();
  await mkdir(temp.home, { recursive: true });
  await writeFile(join(temp.home, 'config.toml'), `flm_bin = "${flmBin}"\n`);
  const ctx = new FerryContext(loadConfig(temp.env));
  const app = await buildApp({ services: await ctx.apiServices() });
  cleanups.push(async () => {
    await app.close();
    await dropPrefix(ctx.config.queuePrefix);
    await ctx.close();
    await temp.cleanup();
  });
  await ctx.registry.mutate((d) => {
    d.set({ id: 'qwen3:0.6b', path: join(temp.home, 'flm', 'q'), backends: ['npu'], metadata: { runtime: 'flm' } });
    d.set({ id: 'tiny', path: join(temp.home, 'tiny.gguf'), sha256: '0'.repeat(64) });
  });
  const res = await app.inject('/api/models');
  expect(res.statusCode).toBe(200);
  return Object.fromEntries(res.json().models.map((m: { id: string }) => [m.id, m]));
}

describe('GET /api/models pullable', () => {
  it('marks FLM rows pullable when an NPU runtime answers, and only FLM rows', async () => {
    const rows = await listWith(FAKE_FLM);
    expect(rows['qwen3:0.6b'].pullable).toBe(true);
    expect(rows.tiny.pullable).toBeUndefined();
  });

  it('marks them not pullable without an NPU runtime', async () => {
    const rows = await listWith(join(REPO_ROOT, 'test/fixtures/no-such-flm'));
    expect(rows['qwen3:0.6b'].pullable).toBe(false);
  });
});
