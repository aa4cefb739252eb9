import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PullStatus } from '../../src/queue/pull-status.js';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';

const REPO = 'acme/faulty-GGUF';
const FILE = 'Faulty-Q8_0.gguf';
const SIZE = 4 * 1024 * 1024 + 5;

async function pull(h: PullHarness, id = 'faulty', body: Record<string, unknown> = { hf_repo: REPO, hf_file: FILE }) {
  const res = await h.app.inject({ method: 'POST', url: `/api/models/${id}/pull`, payload: body });
  expect(res.statusCode, res.body).toBe(202);
  return res.json();
}

async function pullRootFiles(h: PullHarness): Promise<string[]> {
  return readdir(h.ctx.config.pullRoot).then((n) => n.filter((x) => x !== '.tmp'), () => []);
}

/** The pull completed, and the file installed on disk (read back, not the stream's digest) is the Hub's. */
async function expectInstalled(h: PullHarness, done: PullStatus): Promise<void> {
  const expected = await h.hub.sha256(REPO, FILE);
  expect(done.sha256).toBe(expected);
  expect(createHash('sha256').update(await readFile(done.path!)).digest('hex')).toBe(expected);
}

async function tmpFiles(h: PullHarness): Promise<string[]> {
  return readdir(join(h.ctx.config.pullRoot, '.tmp')).catch(() => []);
}

// Big files download on a thread of their own: every fault is also handled there. And where a
// filesystem refuses O_DIRECT the socket reads into the page-cache appender's memory instead.
describe.each([
  ['in the worker', TEST_CONFIG_TOML],
  ['on a download thread', `${TEST_CONFIG_TOML}download_thread_min_bytes = 0\n`],
  ['with page-cache writes', `${TEST_CONFIG_TOML}direct_io = false\n`],
])('pull fault handling, %s', (mode, configToml) => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness({ configToml });
    h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 7 }] });
  });
  afterEach(async () => h.cleanup());

  it('resumes with a Range request after the connection is cut', async () => {
    h.hub.fault(REPO, FILE, { kind: 'cut', afterBytes: 1_000_000 });
    const started = await pull(h);
    const done = await h.waitForState('faulty', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    await expectInstalled(h, done);
    const { logs } = await (await h.ctx.pullQueueStore()).queue.getJobLogs(started.id);
    expect(logs.some((l) => l.includes('on a thread of its own'))).toBe(mode === 'on a download thread');
    expect(logs.some((l) => l.includes('resuming') || l.includes('retrying'))).toBe(true);
    const cdnGets = h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET');
    expect(cdnGets.length).toBe(2);
    // Resumed from what reached the disk: at most the 1,000,000 bytes sent before the cut.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(cdnGets[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(1_000_000);
    expect(h.workerLog.join('\n')).not.toContain('re-hash');
  });

  it('starts over when the server answers a Range request with 200', async () => {
    h.hub.fault(REPO, FILE, { kind: 'cut', afterBytes: 500_000 });
    h.hub.fault(REPO, FILE, { kind: 'ignore-range' });
    await pull(h);
    const done = await h.waitForState('faulty', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    await expectInstalled(h, done);
    expect(h.workerLog.join('\n')).not.toContain('token');
  });

  it('reads a chunked body through node\'s http client', async () => {
    h.hub.fault(REPO, FILE, { kind: 'chunked', times: 2 });
    await pull(h);
    const done = await h.waitForState('faulty', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    await expectInstalled(h, done);
    // Asked for twice: our reader leaves a chunked body to node's client, which asks again.
    expect(h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET').length).toBe(2);
  });

  it('discards the partial file on 416 and downloads again', async () => {
    h.hub.fault(REPO, FILE, { kind: 'cut', afterBytes: 300_000 });
    h.hub.fault(REPO, FILE, { kind: 'status', status: 416 });
    await pull(h);
    const done = await h.waitForState('faulty', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const gets = h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET');
    expect(gets.at(-1)?.range).toBeUndefined();
  });

  it('aborts a stalled request and resumes it', async () => {
    h.hub.fault(REPO, FILE, { kind: 'stall', afterBytes: 200_000, ms: 60_000 });
    await pull(h);
    const done = await h.waitForState('faulty', ['completed', 'failed'], 20_000);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect(h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET').at(-1)?.range).toBe('bytes=200000-');
  });

  it('waits for Retry-After on 429 and retries 503', async () => {
    h.hub.fault(REPO, FILE, { kind: 'status', status: 429, retryAfter: 1 });
    h.hub.fault(REPO, FILE, { kind: 'status', status: 503 });
    await pull(h);
    const done = await h.waitForState('faulty', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    const gets = h.hub.log.filter((l) => l.method === 'GET' && (l.host === 'cdn' || l.path.includes('/resolve/')));
    const t429 = gets.find((l) => l.status === 429)!;
    const after = gets[gets.indexOf(t429) + 1];
    expect(after.time - t429.time).toBeGreaterThanOrEqual(950);
  });

  it('fails with pull.checksum_mismatch on wrong bytes and leaves nothing behind', async () => {
    h.hub.fault(REPO, FILE, { kind: 'corrupt', times: 5 });
    await pull(h);
    const done = await h.waitForState('faulty', ['completed', 'failed']);
    expect(done.state).toBe('failed');
    expect(done.error_code).toBe('pull.checksum_mismatch');
    expect(done.attempts).toBeLessThanOrEqual(1); // final: never retried into a loop
    expect(await pullRootFiles(h)).toEqual([]);
    expect(await tmpFiles(h)).toEqual([]);
    expect((await h.app.inject({ method: 'GET', url: '/api/models/faulty' })).statusCode).toBe(404);
  });

  it('refuses with model.insufficient_disk (507) when the disk cannot hold the file', async () => {
    const margin = 1024 ** 5; // a petabyte of margin: no disk here has that free
    h.hub.addRepo({ id: 'acme/big', files: [{ path: 'big.gguf', size: 1024, seed: 1 }] });
    const { PullService } = await import('../../src/services/pull-service.js');
    const svc = await h.ctx.pulls();
    const tight = new PullService({ ...(svc as unknown as { deps: ConstructorParameters<typeof PullService>[0] }).deps, diskMarginBytes: margin });
    await expect(tight.start('big', { hf_repo: 'acme/big', hf_file: 'big.gguf' })).rejects.toMatchObject({ code: 'model.insufficient_disk' });
    expect(await pullRootFiles(h)).toEqual([]);
  });
});

describe('pull worker refusing a full disk', () => {
  it('fails the job with model.insufficient_disk before downloading', async () => {
    const h = await startPullHarness({ configToml: `stall_timeout_s = 2\nretry_base_ms = 50\ndisk_margin_bytes = ${1024 ** 5}\n`, worker: false });
    try {
      h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 7 }] });
      // The API refuses first (it can see the size up front) ...
      const res = await h.app.inject({ method: 'POST', url: '/api/models/faulty/pull', payload: { hf_repo: REPO, hf_file: FILE } });
      expect(res.statusCode).toBe(507);
      expect(res.json().error.code).toBe('model.insufficient_disk');
      expect(await pullRootFiles(h)).toEqual([]);
      expect(h.hub.log.some((l) => l.host === 'cdn')).toBe(false);
    } finally {
      await h.cleanup();
    }
  });
});

// Keep readFile referenced for future byte comparisons.
void readFile;
