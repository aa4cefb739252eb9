import { lstat, readdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';

const REPO = 'evil/listing-GGUF';
/** What a hostile hub (or a man in the middle on plain http) may list. */
const HOSTILE = ['../x', '/etc/x', 'a/../../x', 'a\\..\\x', 'x\u0000y', '../../canary/pwned.gguf'];

/** Every path under `dir` with its type, size and mtime: any write shows up as a difference. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const name of (await readdir(d).catch(() => [])).sort()) {
      const p = join(d, name);
      const s = await lstat(p);
      out.push(`${p} ${s.isDirectory() ? 'd' : s.size} ${s.isDirectory() ? '' : s.mtimeMs}`);
      if (s.isDirectory()) await walk(p);
    }
  };
  await walk(dir);
  return out;
}

describe('a hostile listing', () => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness({ worker: false });
  });
  afterEach(async () => h.cleanup());

  it.each(HOSTILE)('%j: the API refuses the pull with source.bad_listing and nothing changes on disk', async (bad) => {
    h.hub.addRepo({ id: REPO, files: [{ path: 'Good-Q4_K_M.gguf', size: 1000, seed: 1 }, { path: bad, size: 2000, seed: 2, lfs: true }] });
    const parent = dirname(h.ctx.config.pullRoot);
    const before = await snapshot(dirname(parent));
    const res = await h.app.inject({ method: 'POST', url: '/api/models/evil/pull', payload: { hf_repo: REPO, hf_file: '*.gguf' } });
    expect(res.statusCode, res.body).toBe(502);
    expect(res.json().error.code).toBe('source.bad_listing');
    expect(await snapshot(dirname(parent))).toEqual(before);
  });

  it.each(HOSTILE)('%j: a worker that meets it fails the job at once (final) and writes nothing', async (bad) => {
    // The API saw a clean listing; the hub turns hostile before the worker lists.
    h.hub.addRepo({ id: REPO, files: [{ path: 'Good-Q4_K_M.gguf', size: 1000, seed: 1 }] });
    const res = await h.app.inject({ method: 'POST', url: '/api/models/evil/pull', payload: { hf_repo: REPO, hf_file: '*.gguf' } });
    expect(res.statusCode, res.body).toBe(202);
    h.hub.addRepo({ id: REPO, files: [{ path: 'Good-Q4_K_M.gguf', size: 1000, seed: 1 }, { path: bad, size: 2000, seed: 2, lfs: true }] });
    const parent = dirname(h.ctx.config.pullRoot);
    const before = await snapshot(dirname(parent));
    await h.startWorker();
    const done = await h.waitForState('evil', ['completed', 'failed']);
    expect(done.state).toBe('failed');
    expect(done.error_code).toBe('source.bad_listing');
    expect(done.attempts).toBe(1); // final: not retried
    expect(await snapshot(dirname(parent))).toEqual(before);
    expect(h.hub.log.filter((r) => r.host === 'cdn' || r.path.includes('/resolve/'))).toEqual([]);
    expect((await h.app.inject({ method: 'GET', url: '/api/models/evil' })).statusCode).toBe(404);
  });

  it('a glob like .[.] cannot reach a ".." path, even one that slipped into a file list', async () => {
    const { selectFiles } = await import('../../src/sources/huggingface/hf-ref.js');
    expect(() => selectFiles([{ path: '../x', size: 1 }], ['.[.]/*'], REPO)).toThrow(/bad|listing|\.\./);
    try {
      selectFiles([{ path: '../x', size: 1 }], ['.[.]/*'], REPO);
    } catch (err) {
      expect((err as { code?: string }).code).toBe('source.bad_listing');
    }
  });
});
