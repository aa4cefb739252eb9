import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { waitFor } from '../support/slot-harness.js';
import { childEnv } from '../support/temp-home.js';
import { REPO_ROOT } from '../support/worker-process.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('verify jobs', () => {
  let h: PullHarness;
  const ferry = (args: string[]) => execa('node', [CLI, ...args], { env: childEnv(h.env), extendEnv: false, reject: false });
  beforeAll(async () => {
    h = await startPullHarness();
  });
  afterAll(async () => h.cleanup());

  async function addModel(id: string, size = 3 * 1024 * 1024 + 7): Promise<{ file: string; bytes: Buffer }> {
    await mkdir(h.ctx.config.pullRoot, { recursive: true });
    const file = join(h.ctx.config.pullRoot, `${id}.gguf`);
    const bytes = Buffer.alloc(size, id);
    await writeFile(file, bytes);
    await h.ctx.models.add({ id, path: file });
    return { file, bytes };
  }

  async function verify(id: string) {
    const res = await h.app.inject({ method: 'POST', url: `/api/models/${encodeURIComponent(id)}/verify` });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json().id).toMatch(/^[0-9a-f]{16}$/);
    return waitFor(`verify of ${id}`, async () => {
      const s = (await h.app.inject(`/api/models/${encodeURIComponent(id)}/verify/status`)).json();
      return ['ok', 'corrupt', 'missing', 'not_verifiable', 'failed'].includes(s.state) ? s : undefined;
    });
  }

  it('re-hashes the file and sets verified_at', async () => {
    const { bytes } = await addModel('good');
    const status = await verify('good');
    expect(status).toMatchObject({ state: 'ok', bytes_done: bytes.length, corrupt: null });
    expect(status.files).toEqual([expect.objectContaining({ expected: sha(bytes), found: sha(bytes), ok: true })]);
    const entry = (await h.app.inject('/api/models/good')).json();
    expect(entry.verified_at).toBe(status.verified_at);
    expect(Date.parse(entry.verified_at)).toBeGreaterThan(Date.now() - 60_000);
  });

  it('marks a corrupted file corrupt with both digests, exits 1 from the CLI, and clears the mark once the bytes are right again', async () => {
    const { file, bytes } = await addModel('bad');
    const fh = await open(file, 'r+');
    await fh.write(Buffer.from([bytes[1000] ^ 0xff]), 0, 1, 1000); // one byte flipped in place
    await fh.close();
    const found = sha(await readFile(file));

    const r = await ferry(['model', 'verify', 'bad']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toContain(`bad: CORRUPT ${file}: sha256 ${found}, expected ${sha(bytes)}`);
    expect(r.stderr).toMatch(/^ferry: model\.corrupt: bad is corrupt/m);
    expect(r.stderr).toMatch(/^  hint: pull it again: ferry model pull bad$/m);
    const entry = (await h.app.inject('/api/models/bad')).json();
    expect(entry.metadata.corrupt).toMatchObject({ expected: sha(bytes), found, file });
    expect(entry.verified_at).toBeUndefined();
    const status = (await h.app.inject('/api/models/bad/verify/status')).json();
    expect(status).toMatchObject({ state: 'corrupt', corrupt: { expected: sha(bytes), found, file } });

    await writeFile(file, bytes);
    const ok = await ferry(['model', 'verify', 'bad']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    expect(ok.stdout).toMatch(/^bad: ok \(1 file, verified /m);
    const fixed = (await h.app.inject('/api/models/bad')).json();
    expect(fixed.metadata?.corrupt).toBeUndefined();
    expect(fixed.verified_at).toBeTruthy();
  });

  it('reports a deleted file as missing (not corrupt), with a hint naming the real id', async () => {
    const { file, bytes } = await addModel('gone');
    await rm(file);
    const r = await ferry(['model', 'verify', 'gone']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toContain(`gone: MISSING ${file} (expected sha256 ${sha(bytes)})`);
    expect(r.stdout).not.toContain('CORRUPT');
    expect(r.stderr.trimEnd().split('\n')).toEqual(['ferry: model.files_missing: gone is missing files', '  hint: pull it again: ferry model pull gone']);
    expect((await h.app.inject('/api/models/gone/verify/status')).json()).toMatchObject({ state: 'missing', corrupt: { found: 'missing', file } });
    await h.ctx.models.remove('gone'); // the --all case below expects only healthy rows
  });

  it("the corrupt hint's command works: a pull of a model marked corrupt fetches it again instead of answering already present", async () => {
    h.hub.addRepo({ id: 'acme/re-GGUF', files: [{ path: 're-Q4_K_M.gguf', size: 256 * 1024, seed: 9 }] });
    const first = await ferry(['model', 'pull', 're', '--hf-repo', 'acme/re-GGUF', '--hf-file', 're-Q4_K_M.gguf']);
    expect(first.exitCode, first.stderr).toBe(0);
    const entry = (await h.app.inject('/api/models/re')).json();
    const good = await readFile(entry.path);
    await writeFile(entry.path, Buffer.alloc(good.length, 1)); // same size, wrong bytes
    const v = await ferry(['model', 'verify', 're']);
    expect(v.exitCode).toBe(1);
    expect(v.stderr).toContain('hint: pull it again: ferry model pull re');
    const again = await ferry(['model', 'pull', 're']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).not.toContain('already present');
    expect(again.stdout).toMatch(/^re: completed -> /m);
    // A re-pull installs beside the old file and removes it once the new row commits (#11): read the new row's path.
    const fresh = (await h.app.inject('/api/models/re')).json();
    expect(sha(await readFile(fresh.path))).toBe(sha(good));
    expect(fresh.metadata?.corrupt).toBeUndefined();
  });

  it('reports an FLM directory as not verifiable, not corrupt, and leaves the entry alone', async () => {
    const dir = join(h.home, 'flm', 'Qwen3-0.6B-NPU2');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.q4nx'), 'weights');
    await h.ctx.registry.mutate((d) => d.set({ id: 'qwen3:0.6b', path: dir, files: [{ path: join(dir, 'model.q4nx') }], backends: ['npu'], metadata: { runtime: 'flm' } }));
    const status = await verify('qwen3:0.6b');
    expect(status.state).toBe('not_verifiable');
    expect(status.reason).toContain('no sha256');
    const entry = (await h.app.inject('/api/models/qwen3:0.6b')).json();
    expect(entry.verified_at).toBeUndefined();
    expect(entry.metadata).toEqual({ runtime: 'flm' });
  });

  it('verifies every model with --all and answers 404 for an unknown one', async () => {
    const r = await ferry(['model', 'verify', '--all']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^good: ok/m);
    expect(r.stdout).toMatch(/^qwen3:0\.6b: not verifiable/m);
    const missing = await h.app.inject({ method: 'POST', url: '/api/models/ghost/verify' });
    expect(missing.statusCode).toBe(404);
    expect((await h.app.inject('/api/models/ghost/verify/status')).statusCode).toBe(404);
  });
});
