import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { childEnv, makeTempHome } from '../support/temp-home.js';
import { REPO_ROOT } from '../support/worker-process.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

/** `ferry serve` on a free port; resolves once it logged where it listens. */
async function serve(env: Record<string, string>): Promise<{ child: ResultPromise; base: string; log: () => string }> {
  const child = execa('node', [CLI, 'serve'], { env: childEnv({ ...env, PORT: '0' }), extendEnv: false, reject: false, buffer: false });
  let log = '';
  child.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (log += d.toString()));
  const deadline = Date.now() + 30_000;
  let base: string | undefined;
  while (!base && Date.now() < deadline) {
    base = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log)?.[1];
    if (!base) await new Promise((r) => setTimeout(r, 50));
  }
  if (!base) throw new Error(`ferry serve did not start: ${log}`);
  // The worker's "started" line and the Redis line follow the listen line.
  while (!/taking jobs/.test(log) || !/Redis /.test(log)) {
    if (Date.now() > deadline) throw new Error(`no worker/Redis lines: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, base, log: () => log };
}

describe('ferry serve: what the console says', () => {
  let env: Record<string, string>;
  let home: string;
  let cleanup: () => Promise<void>;
  let running: ResultPromise | undefined;
  beforeAll(async () => {
    ({ env, home, cleanup } = await makeTempHome());
  });
  afterEach(async () => {
    running?.kill('SIGTERM');
    await running;
    running = undefined;
  });
  afterAll(async () => cleanup());

  it('quiet by default (JSON when not a terminal): where it listens, which Redis, the worker; no line per request', async () => {
    const { child, base, log } = await serve(env);
    running = child;
    for (let i = 0; i < 3; i++) expect((await fetch(`${base}/healthz`, { headers: { authorization: 'Bearer secret-token-xyz' } })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    const lines = log().trim().split('\n').map((l) => JSON.parse(l) as { level: number; msg: string });
    const msgs = lines.map((l) => l.msg);
    expect(msgs).toContainEqual(`listening on ${base} (dashboard ${base}/, queues ${base}/admin/queues)`);
    expect(msgs.find((m) => m.startsWith('Redis '))).toBe(`Redis ${env.REDIS_URL} (REDIS_URL / redis_url); one worker in this process, 2 pulls at a time; log_level info`);
    expect(msgs.find((m) => m.includes('worker started'))).toMatch(/^worker: worker started \(pid \d+\), taking jobs from redis:\/\/127\.0\.0\.1:6379: pull, verify and warm, 2 pulls at a time$/);
    expect(msgs.filter((m) => m === 'request')).toEqual([]);
    expect(log()).not.toContain('secret-token-xyz');

    child.kill('SIGINT');
    const r = await child;
    running = undefined;
    expect(r.exitCode).toBe(0);
    expect(log()).toContain('SIGINT: shutting down; active pulls get up to 10 s (shutdown_grace_s) and keep their partial files');
  });

  it('log_level = "debug": one line per request with method, url, status and time; the Authorization header never logged', async () => {
    await writeFile(join(home, 'config.toml'), 'log_level = "debug"\n');
    const { child, base, log } = await serve(env);
    running = child;
    await fetch(`${base}/healthz`, { headers: { authorization: 'Bearer secret-token-xyz' } });
    await fetch(`${base}/api/models/nope`);
    await new Promise((r) => setTimeout(r, 300));
    const requests = log().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
    expect(requests.map((r) => [r.method, r.url, r.status])).toEqual([
      ['GET', '/healthz', 200],
      ['GET', '/api/models/nope', 404],
    ]);
    expect(typeof requests[0].ms).toBe('number');
    expect(log()).not.toContain('secret-token-xyz');
  });

  it('log_format = "pretty": readable lines, not JSON', async () => {
    await writeFile(join(home, 'config.toml'), 'log_format = "pretty"\n');
    const { child, base, log } = await serve(env);
    running = child;
    const line = log().split('\n').find((l) => l.includes('listening on'))!;
    expect(line).toMatch(new RegExp(`^\\[\\d\\d:\\d\\d:\\d\\d\\] INFO.*: listening on ${base.replace(/[.]/g, '\\.')}`));
    expect(() => JSON.parse(line)).toThrow();
  });
});

describe('pull outcomes in the worker log', () => {
  let h: PullHarness;
  beforeAll(async () => {
    h = await startPullHarness();
    h.hub.addRepo({ id: 'acme/log-GGUF', files: [{ path: 'log-Q4_K_M.gguf', size: 300_000, seed: 2 }, { path: 'slow-Q4_K_M.gguf', size: 8 * 1024 * 1024, seed: 4 }] });
    h.hub.addRepo({ id: 'meta/gated', gated: true, files: [{ path: 'g.gguf', size: 100, seed: 1 }] });
    h.hub.fault('acme/log-GGUF', 'slow-Q4_K_M.gguf', { kind: 'slow', bytesPerSecond: 256 * 1024 });
  });
  afterAll(async () => h.cleanup());
  const pull = (id: string, payload: object) => h.app.inject({ method: 'POST', url: `/api/models/${id}/pull`, payload });
  const line = (re: RegExp) => h.workerLog.find((l) => re.test(l));

  it('completed / failed / cancelled, each with id, bytes and seconds', async () => {
    const ok = (await pull('logged', { hf_repo: 'acme/log-GGUF', hf_file: 'log-Q4_K_M.gguf' })).json();
    await h.waitForState('logged', ['completed']);
    const gated = (await pull('gated', { hf_repo: 'meta/gated', hf_file: 'g.gguf' })).json();
    await h.waitForState('gated', ['failed']);
    const slow = (await pull('slowpoke', { hf_repo: 'acme/log-GGUF', hf_file: 'slow-Q4_K_M.gguf' })).json();
    await h.waitForState('slowpoke', ['running']);
    await h.app.inject({ method: 'POST', url: '/api/models/slowpoke/pull/cancel' });
    await h.waitForState('slowpoke', ['cancelled']);
    const deadline = Date.now() + 5000;
    while (!line(/slowpoke\) cancelled/) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));

    expect(line(/logged\)/)).toMatch(new RegExp(`^pull ${ok.id} \\(logged\\) completed: 300000 bytes in \\d+\\.\\d s$`));
    expect(line(/gated\)/)).toMatch(new RegExp(`^pull ${gated.id} \\(gated\\) failed after 0 bytes in \\d+\\.\\d s: source\\.gated: `));
    expect(line(/slowpoke\)/)).toMatch(new RegExp(`^pull ${slow.id} \\(slowpoke\\) cancelled after \\d+ bytes in \\d+\\.\\d s$`));
    expect(h.workerLog.filter((l) => /slowpoke\) failed/.test(l))).toEqual([]); // a cancel is not logged as a failure
  });
});
