import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { childEnv } from '../support/temp-home.js';
import { REPO_ROOT } from '../support/worker-process.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

describe('ferry model pull / pull status / pull cancel', () => {
  let h: PullHarness;
  const ferry = (args: string[]) => execa('node', [CLI, ...args], { env: childEnv(h.env), extendEnv: false, reject: false });
  beforeAll(async () => {
    h = await startPullHarness();
    h.hub.addRepo({ id: 'acme/cli-GGUF', files: [{ path: 'cli-Q4_K_M.gguf', size: 2 * 1024 * 1024, seed: 5 }] });
    h.hub.addRepo({ id: 'meta/gated', gated: true, files: [{ path: 'g.gguf', size: 100, seed: 1 }] });
  });
  afterAll(async () => h.cleanup());

  it('pulls until done and exits 0', async () => {
    const r = await ferry(['model', 'pull', 'cli', '--hf-repo', 'acme/cli-GGUF', '--hf-file', 'cli-Q4_K_M.gguf']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^cli: completed -> .*cli-Q4_K_M\.gguf$/m);
    const status = await ferry(['pull', 'status', 'cli', '--json']);
    expect(JSON.parse(status.stdout)).toMatchObject({ model_id: 'cli', state: 'completed', bytes_downloaded: 2 * 1024 * 1024 });
    const again = await ferry(['model', 'pull', 'cli']);
    expect(again.stdout).toContain('already present');
  });

  it('exits non-zero with the error code and message when the pull fails', async () => {
    const r = await ferry(['model', 'pull', 'gated', '--hf-repo', 'meta/gated', '--hf-file', 'g.gguf']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^ferry: source\.gated: .*accept the licence on the model page and set HF_TOKEN/m);
  });

  it('enqueues with --detach and cancels with ferry pull cancel', async () => {
    h.hub.fault('acme/cli-GGUF', 'slow-Q4_K_M.gguf', { kind: 'slow', bytesPerSecond: 256 * 1024 });
    h.hub.addRepo({ id: 'acme/cli-GGUF', files: [{ path: 'cli-Q4_K_M.gguf', size: 2 * 1024 * 1024, seed: 5 }, { path: 'slow-Q4_K_M.gguf', size: 8 * 1024 * 1024, seed: 6 }] });
    h.hub.fault('acme/cli-GGUF', 'slow-Q4_K_M.gguf', { kind: 'slow', bytesPerSecond: 256 * 1024 });
    const r = await ferry(['model', 'pull', 'slow', '--hf-repo', 'acme/cli-GGUF', '--hf-file', 'slow-Q4_K_M.gguf', '--detach']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^slow: queued as [0-9a-f]{16}; follow it with: ferry pull status slow$/m);
    await h.waitForState('slow', ['running']);
    const c = await ferry(['pull', 'cancel', 'slow']);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout.trim()).toBe('slow: cancelled');
  });

  it('refuses a bad id with exit 1 and one line', async () => {
    const r = await ferry(['pull', 'status', '../x']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr.split('\n')[0]).toMatch(/^ferry: model\.invalid_id: /);
  });
});
