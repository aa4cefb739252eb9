import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { parsedRegistry, sha256OfFile } from '../support/registry-check.js';

const CATALOGUE_ID = 'qwen2.5-0.5b-instruct-q4_k_m';
const CATALOGUE_REPO = 'Qwen/Qwen2.5-0.5B-Instruct-GGUF';
const CATALOGUE_FILE = 'qwen2.5-0.5b-instruct-q4_k_m.gguf';

async function post(h: PullHarness, id: string, body?: Record<string, unknown>) {
  return h.app.inject({ method: 'POST', url: `/api/models/${encodeURIComponent(id)}/pull`, ...(body ? { payload: body } : {}) });
}

describe('same source, or not present', () => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness();
    h.hub.addRepo({ id: CATALOGUE_REPO, files: [{ path: CATALOGUE_FILE, size: 400_000, seed: 51 }] });
    h.hub.addRepo({ id: 'attacker/qwen-GGUF', files: [{ path: CATALOGUE_FILE, size: 410_000, seed: 666 }] });
  });
  afterEach(async () => h.cleanup());

  it('a catalogue id whose row came from another repo is a 409 model.source_conflict, reported by GET, replaced only with replace: true', async () => {
    // The row is pulled from the attacker's repo under the catalogue's id.
    expect((await post(h, CATALOGUE_ID, { hf_repo: 'attacker/qwen-GGUF', hf_file: CATALOGUE_FILE })).statusCode).toBe(202);
    expect((await h.waitForState(CATALOGUE_ID, ['completed', 'failed'])).state).toBe('completed');
    const attackerSha = await h.hub.sha256('attacker/qwen-GGUF', CATALOGUE_FILE);

    // A pull of the catalogue id (no body: the catalogue's coordinates) is not "already present".
    const res = await post(h, CATALOGUE_ID);
    expect(res.statusCode, res.body).toBe(409);
    const error = res.json().error;
    expect(error.code).toBe('model.source_conflict');
    expect(error.hint).toMatch(/another id|replace/);
    expect(error.details.registry.hf_repo).toBe('attacker/qwen-GGUF');
    expect(error.details.requested.hf_repo).toBe(CATALOGUE_REPO);

    const shown = (await h.app.inject({ method: 'GET', url: `/api/models/${CATALOGUE_ID}` })).json();
    expect(shown.source_conflict).toMatchObject({ catalogue: { hf_repo: CATALOGUE_REPO }, registry: { hf_repo: 'attacker/qwen-GGUF' } });
    // Nothing changed.
    let rows = await parsedRegistry(h.ctx.config.registryDir);
    expect(rows[CATALOGUE_ID].hf_repo).toBe('attacker/qwen-GGUF');
    expect(await sha256OfFile(rows[CATALOGUE_ID].path as string)).toBe(attackerSha);

    // With replace: true the catalogue's file replaces it.
    const replaced = await post(h, CATALOGUE_ID, { replace: true });
    expect(replaced.statusCode, replaced.body).toBe(202);
    expect((await h.waitForState(CATALOGUE_ID, ['completed', 'failed'])).state).toBe('completed');
    rows = await parsedRegistry(h.ctx.config.registryDir);
    expect(rows[CATALOGUE_ID].hf_repo).toBe(CATALOGUE_REPO);
    expect(await sha256OfFile(rows[CATALOGUE_ID].path as string)).toBe(await h.hub.sha256(CATALOGUE_REPO, CATALOGUE_FILE));
    expect((await h.app.inject({ method: 'GET', url: `/api/models/${CATALOGUE_ID}` })).json().source_conflict).toBeUndefined();
    // And now it is present: same source.
    const again = await post(h, CATALOGUE_ID);
    expect(again.statusCode).toBe(200);
    expect(again.json().state).toBe('completed');
  });

  it('a known id pulled with another file or a pinned other revision is a conflict; the same coordinates are present', async () => {
    h.hub.addRepo({ id: 'acme/two-GGUF', revision: 'd'.repeat(40), files: [{ path: 'Two-Q4_K_M.gguf', size: 100_000, seed: 61 }, { path: 'Two-Q8_0.gguf', size: 120_000, seed: 62 }] });
    expect((await post(h, 'two', { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q4_K_M.gguf' })).statusCode).toBe(202);
    expect((await h.waitForState('two', ['completed', 'failed'])).state).toBe('completed');
    const other = await post(h, 'two', { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q8_0.gguf' });
    expect(other.statusCode).toBe(409);
    expect(other.json().error.code).toBe('model.source_conflict');
    const pinned = await post(h, 'two', { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q4_K_M.gguf', revision: 'e'.repeat(40) });
    expect(pinned.json().error?.code).toBe('model.source_conflict');
    for (const body of [undefined, { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q4_K_M.gguf' }, { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q4_K_M.gguf', revision: 'd'.repeat(40) }, { hf_repo: 'acme/two-GGUF', hf_file: '*Q4_K_M.gguf' }]) {
      const same = await post(h, 'two', body);
      expect(same.statusCode, `${JSON.stringify(body)}: ${same.body}`).toBe(200);
    }
  });
});

describe('a different request is a different request', () => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness({ worker: false });
    h.hub.addRepo({ id: 'acme/two-GGUF', files: [{ path: 'Two-Q4_K_M.gguf', size: 100_000, seed: 61 }, { path: 'Two-Q8_0.gguf', size: 120_000, seed: 62 }] });
  });
  afterEach(async () => h.cleanup());

  it('pulling an id already being pulled with another file answers 409 pull.conflict naming the running coordinates', async () => {
    const first = await post(h, 'two', { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q4_K_M.gguf' });
    expect(first.statusCode).toBe(202);
    const second = await post(h, 'two', { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q8_0.gguf' });
    expect(second.statusCode, second.body).toBe(409);
    const error = second.json().error;
    expect(error.code).toBe('pull.conflict');
    expect(error.details).toMatchObject({ job_id: first.json().id, running: { hf_repo: 'acme/two-GGUF', hf_file: ['Two-Q4_K_M.gguf'] }, requested: { hf_file: ['Two-Q8_0.gguf'] } });
    // The same request joins.
    const same = await post(h, 'two', { hf_repo: 'acme/two-GGUF', hf_file: 'Two-Q4_K_M.gguf' });
    expect(same.statusCode).toBe(202);
    expect(same.json()).toMatchObject({ id: first.json().id, resumed: true });
    // The one that runs is the first request, and it installs the Q4_K_M.
    await h.startWorker();
    const done = await h.waitForState('two', ['completed', 'failed']);
    expect(done.state).toBe('completed');
    const rows = await parsedRegistry(h.ctx.config.registryDir);
    expect(rows.two.hf_filename).toBe('Two-Q4_K_M.gguf');
    expect(await sha256OfFile(rows.two.path as string)).toBe(await h.hub.sha256('acme/two-GGUF', 'Two-Q4_K_M.gguf'));
  });
});
