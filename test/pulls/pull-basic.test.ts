import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';

const REPO = 'acme/tiny-GGUF';
const COMMIT = 'c'.repeat(40);

describe('a plain pull', () => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness();
    h.hub.addRepo({ id: REPO, revision: COMMIT, files: [{ path: 'Tiny-Q4_K_M.gguf', size: 3 * 1024 * 1024 + 17, seed: 1 }, { path: 'README.md', content: Buffer.from('# tiny\n') }] });
  });
  afterEach(async () => h.cleanup());

  it('downloads, verifies, installs and registers the file', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/models/tiny/pull', payload: { hf_repo: REPO, hf_file: 'Tiny-Q4_K_M.gguf' } });
    expect(res.statusCode).toBe(202);
    const started = res.json();
    expect(started).toMatchObject({ model_id: 'tiny', hf_repo: REPO, hf_file: 'Tiny-Q4_K_M.gguf', status_url: '/api/models/tiny/pull/status' });
    expect(started.id).toMatch(/^[0-9a-f]{16}$/);
    const done = await h.waitForState('tiny', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const expected = await h.hub.sha256(REPO, 'Tiny-Q4_K_M.gguf');
    expect(done.sha256).toBe(expected);
    expect(done.bytes_downloaded).toBe(3 * 1024 * 1024 + 17);
    expect(done.bytes_total).toBe(3 * 1024 * 1024 + 17);
    const entry = (await h.app.inject({ method: 'GET', url: '/api/models/tiny' })).json();
    expect(entry).toMatchObject({ id: 'tiny', sha256: expected, revision: COMMIT, hf_repo: REPO, hf_filename: 'Tiny-Q4_K_M.gguf', size_bytes: 3 * 1024 * 1024 + 17 });
    const onDisk = createHash('sha256').update(await readFile(entry.path)).digest('hex');
    expect(onDisk).toBe(expected);
    // A second request for a present model with the same digest does nothing.
    const again = await h.app.inject({ method: 'POST', url: '/api/models/tiny/pull' });
    expect(again.statusCode).toBe(200);
    expect(again.json().state).toBe('completed');
  });
});
