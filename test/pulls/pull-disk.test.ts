import { execa } from 'execa';
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanStalePartials } from '../../src/services/hf-pull.js';
import { startPullHarness, TEST_CONFIG_TOML } from '../support/pull-harness.js';

describe('stale partial files', () => {
  it('removes .part files and resume records older than 24 h, keeps newer ones', async () => {
    const root = await mkdtemp(join(tmpdir(), 'ferry-stale-'));
    try {
      await mkdir(join(root, '.tmp'));
      const old = Date.now() / 1000 - 25 * 3600;
      for (const name of ['old.part', 'old.part.json']) {
        await writeFile(join(root, '.tmp', name), 'x');
        await utimes(join(root, '.tmp', name), old, old);
      }
      await writeFile(join(root, '.tmp', 'fresh.part'), 'y');
      const removed = await cleanStalePartials(root);
      expect(removed.map((p) => p.split('/').pop()).sort()).toEqual(['old.part', 'old.part.json']);
      expect(await readdir(join(root, '.tmp'))).toEqual(['fresh.part']);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('a disk that fills up during the download', () => {
  const mountPoint = join(tmpdir(), `ferry-small-disk-${process.pid}`);
  let mounted = false;
  beforeAll(async () => {
    await mkdir(mountPoint, { recursive: true });
    const r = await execa('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mountPoint], { reject: false });
    mounted = r.exitCode === 0;
    if (!mounted) console.log(`skipping the ENOSPC test: cannot mount a small tmpfs here (${r.stderr.trim()}); it needs root`);
  });
  afterAll(async () => {
    if (mounted) await execa('umount', [mountPoint], { reject: false });
    await rm(mountPoint, { recursive: true, force: true });
  });

  it('fails the pull with pull.disk_full, not retried, leaving no row and nothing in the pull root', async (ctx) => {
    if (!mounted) return ctx.skip();
    const h = await startPullHarness({ configToml: `${TEST_CONFIG_TOML}pull_root = "${mountPoint}"\n` });
    try {
      h.hub.addRepo({ id: 'acme/fat', files: [{ path: 'fat.gguf', size: 6 * 1024 * 1024, seed: 8 }] });
      h.hub.fault('acme/fat', 'fat.gguf', { kind: 'slow', bytesPerSecond: 2 * 1024 * 1024 });
      const res = await h.app.inject({ method: 'POST', url: '/api/models/fat/pull', payload: { hf_repo: 'acme/fat', hf_file: 'fat.gguf' } });
      expect(res.statusCode, res.body).toBe(202);
      // Wait until bytes are flowing (past the free-space check), then fill the disk.
      for (let i = 0; i < 400; i++) {
        const s = (await h.app.inject({ method: 'GET', url: '/api/models/fat/pull/status' })).json();
        if (s.bytes_downloaded > 500_000) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      // Someone else fills the disk while the pull runs.
      await execa('sh', ['-c', `dd if=/dev/zero of=${mountPoint}/filler bs=1M count=8 2>/dev/null || true`]);
      const done = await h.waitForState('fat', ['completed', 'failed']);
      expect(done.state).toBe('failed');
      expect(done.error_code).toBe('pull.disk_full');
      expect(done.attempts).toBeLessThanOrEqual(1);
      expect((await h.app.inject({ method: 'GET', url: '/api/models/fat' })).statusCode).toBe(404);
      expect((await readdir(mountPoint)).filter((n) => n !== '.tmp' && n !== 'filler')).toEqual([]);
    } finally {
      await h.cleanup();
    }
  });
});
