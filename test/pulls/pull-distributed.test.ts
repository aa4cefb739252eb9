import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';
import { spawnWorker } from '../support/worker-process.js';

const REPO = 'acme/slow-GGUF';
const FILE = 'Slow-Q4_K_M.gguf';
const SIZE = 6 * 1024 * 1024;

describe.each([
  ['in the worker', TEST_CONFIG_TOML],
  ['on a download thread', `${TEST_CONFIG_TOML}download_thread_min_bytes = 0\n`],
])('pulls across processes, %s', (_mode, configToml) => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness({ worker: false, configToml });
    h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 3 }] });
  });
  afterEach(async () => h.cleanup());

  it('answers concurrent requests for one model with one job (resumed: true)', async () => {
    const body = { hf_repo: REPO, hf_file: FILE };
    const answers = await Promise.all(Array.from({ length: 5 }, () => h.app.inject({ method: 'POST', url: '/api/models/slow/pull', payload: body })));
    const ids = new Set(answers.map((a) => a.json().id));
    expect(answers.every((a) => a.statusCode === 202)).toBe(true);
    expect(ids.size).toBe(1);
    expect(answers.filter((a) => a.json().resumed === true)).toHaveLength(4);
    const queue = (await h.ctx.pullQueueStore()).queue;
    expect(await queue.getJobCountByTypes('waiting', 'active', 'delayed')).toBe(1);
  });

  it('cancels a pull running on a worker in another process within a second', async () => {
    h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 512 * 1024 });
    const worker = spawnWorker(h.env);
    try {
      await worker.ready;
      await h.app.inject({ method: 'POST', url: '/api/models/slow/pull', payload: { hf_repo: REPO, hf_file: FILE } });
      const running = await h.waitForState('slow', ['running']);
      expect(running.state).toBe('running');
      await waitForBytes(h, 'slow', 100_000);
      const t0 = Date.now();
      const res = await h.app.inject({ method: 'POST', url: '/api/models/slow/pull/cancel' });
      expect(res.statusCode).toBe(200);
      const cancelled = await h.waitForState('slow', ['cancelled', 'failed', 'completed']);
      expect(cancelled.state).toBe('cancelled');
      expect(cancelled.error_code).toBe('pull.cancelled');
      expect(Date.now() - t0).toBeLessThan(1000);
      // Idempotent.
      const again = await h.app.inject({ method: 'POST', url: '/api/models/slow/pull/cancel' });
      expect(again.statusCode).toBe(200);
      expect(again.json().state).toBe('cancelled');
      // No entry, no file in the pull root, no partial left.
      expect((await h.app.inject({ method: 'GET', url: '/api/models/slow' })).statusCode).toBe(404);
      await waitFor(async () => (await readdir(join(h.ctx.config.pullRoot, '.tmp')).catch(() => [])).length === 0);
      expect((await readdir(h.ctx.config.pullRoot)).filter((n) => n !== '.tmp')).toEqual([]);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.child;
    }
  });

  it('cancels a queued pull that no worker has taken', async () => {
    const started = await h.app.inject({ method: 'POST', url: '/api/models/slow/pull', payload: { hf_repo: REPO, hf_file: FILE } });
    expect(started.statusCode, started.body).toBe(202);
    const res = await h.app.inject({ method: 'POST', url: '/api/models/slow/pull/cancel' });
    expect(res.json().state, res.body).toBe('cancelled');
    expect((await h.app.inject({ method: 'GET', url: '/api/models/slow/pull/status' })).json().state).toBe('cancelled');
    // A new pull is possible afterwards (the deduplication key was released).
    const again = await h.app.inject({ method: 'POST', url: '/api/models/slow/pull', payload: { hf_repo: REPO, hf_file: FILE } });
    expect(again.json().resumed).toBeUndefined();
  });

  it('finishes on a second worker after the first is killed with SIGKILL mid-pull, resuming the partial file', async () => {
    h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 1024 * 1024 });
    const first = spawnWorker(h.env);
    await first.ready;
    await h.app.inject({ method: 'POST', url: '/api/models/slow/pull', payload: { hf_repo: REPO, hf_file: FILE } });
    await waitForBytes(h, 'slow', 1_500_000);
    first.child.kill('SIGKILL');
    await first.child;
    h.hub.clearFaults();
    const second = spawnWorker(h.env);
    try {
      await second.ready;
      const done = await h.waitForState('slow', ['completed', 'failed'], 45_000);
      expect(done.state, JSON.stringify(done)).toBe('completed');
      expect(done.sha256).toBe(await h.hub.sha256(REPO, FILE));
      // The file on disk, read back (the status digest is the stream's).
      expect(createHash('sha256').update(await readFile(done.path!)).digest('hex')).toBe(done.sha256);
      const ranged = h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET' && l.range);
      expect(ranged.length).toBeGreaterThan(0);
      expect(Number(/bytes=(\d+)-/.exec(ranged.at(-1)!.range!)![1])).toBeGreaterThan(1_000_000);
    } finally {
      second.child.kill('SIGTERM');
      await second.child;
    }
  });
});

async function waitForBytes(h: PullHarness, id: string, bytes: number): Promise<void> {
  await waitFor(async () => {
    const res = await h.app.inject({ method: 'GET', url: `/api/models/${id}/pull/status` });
    return res.statusCode === 200 && res.json().bytes_downloaded >= bytes;
  });
}

async function waitFor(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}

describe('worker shutdown', () => {
  it('on SIGTERM stops within its grace period, keeps the partial file, and the pull resumes on another worker', async () => {
    const { writeFile } = await import('node:fs/promises');
    const h = await startPullHarness({ worker: false });
    try {
      await writeFile(join(h.home, 'config.toml'), 'stall_timeout_s = 2\nretry_base_ms = 50\njob_lock_ms = 3000\ndisk_margin_bytes = 0\nshutdown_grace_s = 0.5\n');
      h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 3 }] });
      h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 1024 * 1024 });
      const first = spawnWorker(h.env);
      await first.ready;
      await h.app.inject({ method: 'POST', url: '/api/models/slow/pull', payload: { hf_repo: REPO, hf_file: FILE } });
      await waitForBytes(h, 'slow', 1_000_000);
      const t0 = Date.now();
      first.child.kill('SIGTERM');
      const exit = await first.child;
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(exit.exitCode ?? exit.signal).not.toBeUndefined();
      const partials = await readdir(join(h.ctx.config.pullRoot, '.tmp'));
      expect(partials.some((n) => n.endsWith('.part'))).toBe(true);
      const waiting = (await h.app.inject({ method: 'GET', url: '/api/models/slow/pull/status' })).json();
      expect(waiting.state).toBe('queued'); // back in the queue for the next worker, not failed
      h.hub.clearFaults();
      const second = spawnWorker(h.env);
      try {
        const done = await h.waitForState('slow', ['completed', 'failed'], 45_000);
        expect(done.state, JSON.stringify(done)).toBe('completed');
        const ranged = h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET' && l.range);
        expect(ranged.length).toBeGreaterThan(0);
      } finally {
        second.child.kill('SIGTERM');
        await second.child;
      }
    } finally {
      await h.cleanup();
    }
  });
});
