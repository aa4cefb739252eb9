import { readFile, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REGISTRY_FILE } from '../../src/registry/registry-store.js';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { parsedRegistry, sha256OfFile } from '../support/registry-check.js';

async function pullAndWait(h: PullHarness, id: string, body: Record<string, unknown>) {
  const res = await h.app.inject({ method: 'POST', url: `/api/models/${encodeURIComponent(id)}/pull`, payload: body });
  expect(res.statusCode, res.body).toBe(202);
  const done = await h.waitForState(id, ['completed', 'failed', 'cancelled']);
  expect(done.state, JSON.stringify(done)).toBe('completed');
  return done;
}

describe('each id owns its files', () => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness();
  });
  afterEach(async () => h.cleanup());

  it('x:y and x-y never share a path (hal0 maps both to x-y)', async () => {
    h.hub.addRepo({ id: 'one/x-GGUF', files: [{ path: 'X-Q4_K_M.gguf', size: 300_000, seed: 11 }] });
    h.hub.addRepo({ id: 'two/x-GGUF', files: [{ path: 'X-Q4_K_M.gguf', size: 310_000, seed: 12 }] });
    h.hub.addRepo({ id: 'three/x-GGUF', files: [{ path: 'X-Q4_K_M.gguf', size: 320_000, seed: 13 }] });
    // A third id with the same file name first: the older layout then sent both x-y and x:y to <pull_root>/x-y/.
    await pullAndWait(h, 'z', { hf_repo: 'three/x-GGUF', hf_file: 'X-Q4_K_M.gguf' });
    await pullAndWait(h, 'x-y', { hf_repo: 'two/x-GGUF', hf_file: 'X-Q4_K_M.gguf' });
    await pullAndWait(h, 'x:y', { hf_repo: 'one/x-GGUF', hf_file: 'X-Q4_K_M.gguf' });
    const rows = await parsedRegistry(h.ctx.config.registryDir);
    expect(new Set([rows['x:y'].path, rows['x-y'].path, rows.z.path]).size).toBe(3);
    expect(await sha256OfFile(rows.z.path as string)).toBe(await h.hub.sha256('three/x-GGUF', 'X-Q4_K_M.gguf'));
    expect(await sha256OfFile(rows['x:y'].path as string)).toBe(await h.hub.sha256('one/x-GGUF', 'X-Q4_K_M.gguf'));
    expect(await sha256OfFile(rows['x-y'].path as string)).toBe(await h.hub.sha256('two/x-GGUF', 'X-Q4_K_M.gguf'));
    expect(rows['x:y'].sha256).toBe(await h.hub.sha256('one/x-GGUF', 'X-Q4_K_M.gguf'));
    expect(rows['x-y'].sha256).toBe(await h.hub.sha256('two/x-GGUF', 'X-Q4_K_M.gguf'));
    expect(rows['x:y'].path).toBe(join(h.ctx.config.pullRoot, 'x%3Ay', 'X-Q4_K_M.gguf'));
    expect(rows['x-y'].path).toBe(join(h.ctx.config.pullRoot, 'x-y', 'X-Q4_K_M.gguf'));
  });

  it('two repos both shipping model.gguf install side by side', async () => {
    h.hub.addRepo({ id: 'org-a/model', files: [{ path: 'model.gguf', size: 200_000, seed: 21 }] });
    h.hub.addRepo({ id: 'org-b/model', files: [{ path: 'model.gguf', size: 200_000, seed: 22 }] });
    await pullAndWait(h, 'model-a', { hf_repo: 'org-a/model', hf_file: 'model.gguf' });
    await pullAndWait(h, 'model-b', { hf_repo: 'org-b/model', hf_file: 'model.gguf' });
    const rows = await parsedRegistry(h.ctx.config.registryDir);
    expect(rows['model-a'].path).not.toBe(rows['model-b'].path);
    expect(await sha256OfFile(rows['model-a'].path as string)).toBe(await h.hub.sha256('org-a/model', 'model.gguf'));
    expect(await sha256OfFile(rows['model-b'].path as string)).toBe(await h.hub.sha256('org-b/model', 'model.gguf'));
  });

  it('a row written by an older layout keeps working where it is, and a re-pull moves it without touching a neighbour', async () => {
    h.hub.addRepo({ id: 'org-a/model', files: [{ path: 'model.gguf', size: 100_000, seed: 31 }] });
    const legacy = join(h.ctx.config.pullRoot, 'model.gguf');
    const neighbour = join(h.ctx.config.pullRoot, 'other.gguf');
    await h.ctx.registry.mutate(async (d) => {
      const { mkdir } = await import('node:fs/promises');
      await mkdir(h.ctx.config.pullRoot, { recursive: true });
      await writeFile(legacy, 'old weights');
      await writeFile(neighbour, 'neighbour weights');
      d.set({ id: 'old', path: legacy, hf_repo: 'org-a/model', hf_filename: 'model.gguf', sha256: 'a'.repeat(64) });
      d.set({ id: 'other', path: neighbour });
    });
    expect((await h.app.inject({ method: 'GET', url: '/api/models/old' })).json().path).toBe(legacy);
    // A different digest was asked for: not present, so it is pulled and replaces the legacy file.
    await pullAndWait(h, 'old', { hf_repo: 'org-a/model', hf_file: 'model.gguf', sha256: await h.hub.sha256('org-a/model', 'model.gguf') });
    const rows = await parsedRegistry(h.ctx.config.registryDir);
    expect(rows.old.path).toBe(join(h.ctx.config.pullRoot, 'old', 'model.gguf'));
    expect(await sha256OfFile(rows.old.path as string)).toBe(await h.hub.sha256('org-a/model', 'model.gguf'));
    await expect(readFile(legacy)).rejects.toMatchObject({ code: 'ENOENT' }); // removed after the new row committed
    expect(await readFile(neighbour, 'utf8')).toBe('neighbour weights');
    expect(rows.other.path).toBe(neighbour);
  });
});

describe('a failed re-pull keeps the good weights', () => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness();
  });
  afterEach(async () => h.cleanup());

  it('registry.toml unparseable when the new row is written: the old file and the old row stay exactly as they were', async () => {
    const REPO = 'acme/keep-GGUF';
    const FILE = 'Keep-Q4_K_M.gguf';
    h.hub.addRepo({ id: REPO, revision: '1'.repeat(40), files: [{ path: FILE, size: 1_500_000, seed: 41 }] });
    const first = await pullAndWait(h, 'keep', { hf_repo: REPO, hf_file: FILE });
    const oldSha = first.sha256!;
    const registryFile = join(h.ctx.config.registryDir, REGISTRY_FILE);
    const goodText = await readFile(registryFile, 'utf8');
    const oldRow = (await parsedRegistry(h.ctx.config.registryDir)).keep;

    // The repo moves on; ask for the new content, slowly, and break registry.toml while it downloads.
    h.hub.addRepo({ id: REPO, revision: '2'.repeat(40), files: [{ path: FILE, size: 1_600_000, seed: 42 }] });
    const newSha = await h.hub.sha256(REPO, FILE);
    h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 2_000_000 });
    const res = await h.app.inject({ method: 'POST', url: '/api/models/keep/pull', payload: { hf_repo: REPO, hf_file: FILE, sha256: newSha } });
    expect(res.statusCode, res.body).toBe(202);
    await h.waitForState('keep', ['running']);
    await writeFile(registryFile, '[models."keep"\npath = ');
    const failed = await h.waitForState('keep', ['completed', 'failed']);
    expect(failed.state).toBe('failed');
    expect(failed.error_code).toBe('registry.corrupt');

    await writeFile(registryFile, goodText);
    const rows = await parsedRegistry(h.ctx.config.registryDir);
    expect(rows.keep).toEqual(oldRow);
    expect(await sha256OfFile(oldRow.path as string)).toBe(oldSha);
    // The verified new bytes went back to .tmp for the next attempt; nothing else was left in the pull root.
    const tmp = await readdir(join(h.ctx.config.pullRoot, '.tmp'));
    expect(tmp.some((n) => n.endsWith('.part'))).toBe(true);
    expect((await readdir(h.ctx.config.pullRoot)).filter((n) => n !== '.tmp').sort()).toEqual(['keep']);
  });
});
