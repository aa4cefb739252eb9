import { once } from 'node:events';
import { lookup } from 'node:dns/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromSystemError } from '../../src/cli/output.js';
import { assertFreeSpace } from '../../src/stores/disk-space.js';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { childEnv, makeTempHome } from '../support/temp-home.js';
import { REPO_ROOT } from '../support/worker-process.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

/** One line `ferry: <code>: <message>`, then only indented hint lines; never a stack trace. */
function expectOneLineError(r: { exitCode?: number; stderr: string }, code: string): string[] {
  expect(r.exitCode).not.toBe(0);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(new RegExp(`^ferry: ${code.replace('.', '\\.')}: \\S`));
  for (const extra of lines.slice(1)) expect(extra).toMatch(/^ {2}hint: \S/);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  return lines;
}

async function closedPort(): Promise<number> {
  const srv = createServer();
  srv.listen(0, '127.0.0.1');
  await once(srv, 'listening');
  const { port } = srv.address() as { port: number };
  await new Promise((r) => srv.close(r));
  return port;
}

describe('ferry model pull with no worker', () => {
  let h: PullHarness;
  beforeAll(async () => {
    h = await startPullHarness({ worker: false });
    h.hub.addRepo({ id: 'acme/idle-GGUF', files: [{ path: 'idle-Q4_K_M.gguf', size: 1024, seed: 3 }] });
  });
  afterAll(async () => h.cleanup());

  it('says after a few seconds that no worker runs and how to start one; Ctrl-C + leave running exits 0 with the status command', async () => {
    const child = execa('node', [CLI, 'model', 'pull', 'idle', '--hf-repo', 'acme/idle-GGUF', '--hf-file', 'idle-Q4_K_M.gguf'], { env: childEnv(h.env), extendEnv: false, reject: false });
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const deadline = Date.now() + 20_000;
    while (!stderr.includes('no worker is taking pull jobs') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(stderr).toContain('ferry: no worker is taking pull jobs, so this pull stays queued until one starts.');
    expect(stderr).toMatch(/hint: start one with `ferry worker` \(or `npm run worker`\)/);
    child.kill('SIGINT'); // stdin is not a terminal: the pull is left running
    const r = await child;
    expect(r.exitCode, stderr).toBe(0);
    expect(r.stdout).toBe('idle: queued, left running; follow it with: ferry pull status idle');
    const status = await execa('node', [CLI, 'pull', 'status', 'idle', '--json'], { env: childEnv(h.env), extendEnv: false, reject: false });
    expect(JSON.parse(status.stdout)).toMatchObject({ model_id: 'idle', state: 'queued' });
    await h.app.inject({ method: 'POST', url: '/api/models/idle/pull/cancel' });
  });

  it('--detach says how to follow the pull and that no worker runs', async () => {
    const r = await execa('node', [CLI, 'model', 'pull', 'idle2', '--hf-repo', 'acme/idle-GGUF', '--hf-file', 'idle-Q4_K_M.gguf', '--detach'], { env: childEnv(h.env), extendEnv: false, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^idle2: queued as [0-9a-f]{16}; follow it with: ferry pull status idle2$/);
    expect(r.stderr).toContain('no worker is taking pull jobs');
    await h.app.inject({ method: 'POST', url: '/api/models/idle2/pull/cancel' });
  });

  it('with a worker running, --detach does not warn', async () => {
    const w = await h.startWorker();
    try {
      const r = await execa('node', [CLI, 'model', 'pull', 'idle3', '--hf-repo', 'acme/idle-GGUF', '--hf-file', 'idle-Q4_K_M.gguf', '--detach'], { env: childEnv(h.env), extendEnv: false, reject: false });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toBe('');
      await h.waitForState('idle3', ['completed']);
    } finally {
      await w.close();
    }
  });
});

describe('errors are one line with a code and a hint', () => {
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ env, cleanup } = await makeTempHome());
  });
  afterAll(async () => cleanup());
  const ferry = (args: string[], extra: Record<string, string> = {}) => execa('node', [CLI, ...args], { env: childEnv({ ...env, ...extra }), extendEnv: false, reject: false });

  it('EPIPE (`ferry model catalogue | head` with the reader gone) exits 0 without a word', async () => {
    const child = execa('node', [CLI, 'model', 'catalogue'], { env: childEnv(env), extendEnv: false, reject: false, stdout: 'pipe' });
    child.stdout!.destroy(); // the reading end closes before the first write
    const r = await child;
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
  });

  it('bento import of a missing file: file.not_found, no stack trace', async () => {
    const missing = join(env.FERRY_HOME, 'nope.bentomodel');
    const lines = expectOneLineError(await ferry(['bento', 'import', missing]), 'file.not_found');
    expect(lines[0]).toBe(`ferry: file.not_found: no such file or directory: ${missing}`);
    expect(lines[1]).toBe('  hint: check the path');
  });

  it('serve on a port in use: server.port_in_use with a hint', async () => {
    const busy = createServer();
    busy.listen(0, '127.0.0.1');
    await once(busy, 'listening');
    try {
      const port = String((busy.address() as { port: number }).port);
      const r = await ferry(['serve', '--no-worker'], { PORT: port, HOST: '127.0.0.1' });
      const lines = expectOneLineError(r, 'server.port_in_use');
      expect(lines[0]).toContain(`127.0.0.1:${port}`);
      expect(lines[1]).toMatch(/set PORT/);
    } finally {
      busy.close();
    }
  });

  it('Redis down: redis.unavailable naming the URL without its password', async () => {
    const port = await closedPort();
    const r = await ferry(['pull', 'list'], { REDIS_URL: `redis://ferry:s3cret-pw@127.0.0.1:${port}` });
    const lines = expectOneLineError(r, 'redis.unavailable');
    expect(lines[0]).toBe(`ferry: redis.unavailable: no Redis answered at redis://***@127.0.0.1:${port} within 1.5 s`);
    expect(r.stderr).not.toContain('s3cret-pw');
  });

  it("node's DNS and port errors become typed FerryErrors with hints", async () => {
    const dns = await lookup('no-such-host.invalid').catch((e: unknown) => e);
    const typed = fromSystemError(dns);
    expect(typed.code).toBe('source.unavailable');
    expect(typed.message).toBe('cannot resolve no-such-host.invalid (ENOTFOUND)');
    expect(typed.hint).toMatch(/hf_endpoint/);
    const a = createServer().listen(0, '127.0.0.1');
    await once(a, 'listening');
    const b = createServer();
    const inUse = await new Promise<unknown>((resolve) => b.once('error', resolve).listen((a.address() as { port: number }).port, '127.0.0.1'));
    a.close();
    expect(fromSystemError(inUse)).toMatchObject({ code: 'server.port_in_use' });
  });

  it('disk errors give sizes a person reads', async () => {
    const err = await assertFreeSpace(env.FERRY_HOME, 2 ** 60, 256 * 1024 * 1024).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'model.insufficient_disk' });
    expect((err as Error).message).toMatch(/: \d+(\.\d)? [KMGT]iB free, 1024\.0 PiB needed \(1024\.0 PiB plus a 256\.0 MiB margin\)$/);
  });
});
