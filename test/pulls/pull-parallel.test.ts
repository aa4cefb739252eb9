import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PullStatus } from '../../src/queue/pull-status.js';
import { SLAB_BYTES } from '../../src/sources/huggingface/download-parallel.js';
import type { RequestLog } from '../support/fake-hub.js';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';
import { spawnWorker } from '../support/worker-process.js';

const REPO = 'acme/parts-GGUF';
const FILE = 'Parts-Q8_0.gguf';
const SIZE = 10 * SLAB_BYTES + 777;
const MiB = 1024 * 1024;
/** Every file of at least 1 byte in parts: the test files are small. */
const PARALLEL_TOML = `${TEST_CONFIG_TOML}parallel_min_bytes = 1\npull_connections = 4\npull_memory_bytes = ${16 * SLAB_BYTES}\n`;

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

function rangesOf(log: RequestLog[], file = FILE): Array<[number, number]> {
  return log
    .filter((r) => r.host === 'cdn' && r.method === 'GET' && r.path.includes(`file=${encodeURIComponent(file)}`))
    .map((r) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(r.range ?? '');
      if (!m) throw new Error(`a part GET without a closed Range: ${r.range}`);
      return [Number(m[1]), Number(m[2])] as [number, number];
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

async function status(h: PullHarness, id: string): Promise<PullStatus> {
  return (await h.app.inject({ method: 'GET', url: `/api/models/${id}/pull/status` })).json() as PullStatus;
}

describe('parallel pulls through the queue', () => {
  let h: PullHarness;
  afterEach(async () => h.cleanup());

  describe('with an in-process worker', () => {
    beforeEach(async () => {
      h = await startPullHarness({ configToml: PARALLEL_TOML });
      h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 9, requireRange: true }] });
    });

    it('pulls a file in parts, shows the connections in status, installs the right bytes', async () => {
      h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 6 * MiB });
      const res = await h.app.inject({ method: 'POST', url: '/api/models/parts/pull', payload: { hf_repo: REPO, hf_file: FILE } });
      expect(res.statusCode, res.body).toBe(202);
      let most = 0;
      await waitFor(async () => {
        const s = await status(h, 'parts');
        most = Math.max(most, s.connections);
        return s.state === 'completed' || s.state === 'failed';
      }, 30_000);
      const done = await status(h, 'parts');
      expect(done.state, JSON.stringify(done)).toBe('completed');
      expect(done.connections).toBe(0);
      expect(most).toBeGreaterThan(1);
      expect(most).toBeLessThanOrEqual(4);
      expect(await sha256Of(done.path!)).toBe(await h.hub.sha256(REPO, FILE));
      expect(rangesOf(h.hub.log).length).toBeGreaterThanOrEqual(3);
    });

    it('downloads the shards of a split GGUF at once, sharing the pull\'s connections', async () => {
      const shards = [1, 2, 3].map((i) => `Split-Q4_K_M-0000${i}-of-00003.gguf`);
      h.hub.addRepo({ id: 'acme/split-GGUF', files: shards.map((path, i) => ({ path, size: 3 * SLAB_BYTES + i, seed: 20 + i })) });
      h.hub.fault('acme/split-GGUF', shards[0], { kind: 'slow', bytesPerSecond: 8 * MiB });
      h.hub.fault('acme/split-GGUF', shards[1], { kind: 'slow', bytesPerSecond: 8 * MiB });
      h.hub.fault('acme/split-GGUF', shards[2], { kind: 'slow', bytesPerSecond: 8 * MiB });
      const res = await h.app.inject({ method: 'POST', url: '/api/models/split/pull', payload: { hf_repo: 'acme/split-GGUF', hf_file: shards[0] } });
      expect(res.statusCode, res.body).toBe(202);
      const done = await h.waitForState('split', ['completed', 'failed'], 30_000);
      expect(done.state, JSON.stringify(done)).toBe('completed');
      for (const [i, f] of done.files.entries()) expect(await sha256Of(f.dest!)).toBe(await h.hub.sha256('acme/split-GGUF', shards[i]));
      // The shards overlapped in time: the last shard's first GET came before the first shard's last one.
      const gets = h.hub.log.filter((r) => r.host === 'cdn' && r.method === 'GET');
      const first = (s: string) => gets.find((r) => r.path.includes(encodeURIComponent(s)))!.time;
      const last = (s: string) => gets.filter((r) => r.path.includes(encodeURIComponent(s))).at(-1)!.time;
      expect(first(shards[2])).toBeLessThan(last(shards[0]));
    });
  });

  it('a worker killed with SIGKILL mid-pull: another process resumes and no part on disk is fetched again', async () => {
    h = await startPullHarness({ worker: false, configToml: PARALLEL_TOML });
    h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 9, requireRange: true }] });
    h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 3 * MiB });
    const first = spawnWorker(h.env);
    await first.ready;
    await h.app.inject({ method: 'POST', url: '/api/models/parts/pull', payload: { hf_repo: REPO, hf_file: FILE } });
    // Some parts whole (each is 4 slabs at 3 MiB/s per connection: ~5 s), others not.
    await waitFor(async () => (await status(h, 'parts')).bytes_downloaded >= 6 * SLAB_BYTES, 30_000);
    await new Promise((r) => setTimeout(r, 1200)); // the record is saved at most every second
    first.child.kill('SIGKILL');
    await first.child;
    const { readPartialRecord } = await import('../../src/sources/huggingface/partial-record.js');
    const { readdir } = await import('node:fs/promises');
    const tmp = `${h.ctx.config.pullRoot}/.tmp`;
    const recordName = (await readdir(tmp)).find((n) => n.endsWith('.part.json'))!;
    const written = (await readPartialRecord(`${tmp}/${recordName}`))!.written ?? [];
    expect(written.length).toBeGreaterThan(0);
    h.hub.clearFaults();
    const before = h.hub.log.length;
    const second = spawnWorker(h.env);
    try {
      await second.ready;
      const done = await h.waitForState('parts', ['completed', 'failed'], 45_000);
      expect(done.state, JSON.stringify(done)).toBe('completed');
      expect(await sha256Of(done.path!)).toBe(await h.hub.sha256(REPO, FILE));
      const refetched = rangesOf(h.hub.log.slice(before));
      for (const [s, e] of refetched) for (const [ws, we] of written) expect(e < ws || s >= we, `range ${s}-${e} overlaps ${ws}-${we} on disk`).toBe(true);
    } finally {
      second.child.kill('SIGTERM');
      await second.child;
    }
  });

  it('holds the memory budget: with one part slow, the worker\'s RSS stays under 300 MB while the others wait', async () => {
    const big = 96 * MiB;
    h = await startPullHarness({ worker: false, configToml: `${TEST_CONFIG_TOML}pull_connections = 8\n` });
    h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: big, seed: 9 }] });
    h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 4 * MiB, atByte: 0 });
    const worker = spawnWorker(h.env);
    let peak = 0;
    const sampler = setInterval(async () => {
      const text = await readFile(`/proc/${worker.child.pid}/status`, 'utf8').catch(() => '');
      peak = Math.max(peak, Number(/VmRSS:\s+(\d+)/.exec(text)?.[1] ?? 0) * 1024);
    }, 50);
    try {
      await worker.ready;
      await h.app.inject({ method: 'POST', url: '/api/models/parts/pull', payload: { hf_repo: REPO, hf_file: FILE } });
      const done = await h.waitForState('parts', ['completed', 'failed'], 60_000);
      expect(done.state, JSON.stringify(done)).toBe('completed');
      expect(await sha256Of(done.path!)).toBe(await h.hub.sha256(REPO, FILE));
      expect(peak).toBeGreaterThan(0);
      expect(peak).toBeLessThan(300 * MiB);
    } finally {
      clearInterval(sampler);
      worker.child.kill('SIGTERM');
      await worker.child;
    }
  });
});
