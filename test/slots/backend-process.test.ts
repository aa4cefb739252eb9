import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { BackendProcess, type BackendStartOptions } from '../../src/slots/backend-process.js';
import { expectFerryError } from '../support/expect-ferry-error.js';
import { isProcessAlive } from '../../src/util/process-alive.js';

const FAKE_BACKEND = resolve('test/fixtures/fake-backend');
let dir: string;
const started: BackendProcess[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-backend-'));
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((b) => b.stop()));
  await rm(dir, { recursive: true, force: true });
});

/** A port nothing listens on right now (the kernel picks it; we release it at once). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

async function start(env: Record<string, string>, extra: Partial<BackendStartOptions> = {}): Promise<BackendProcess> {
  const backend = await BackendProcess.start({
    command: `${FAKE_BACKEND} -m {path} --port {port} {extra_args}`,
    values: { path: '/models/a b.gguf', port: await freePort(), extra_args: ['--ctx-size', '4096'] },
    env: { FAKE_BACKEND_ARGV_FILE: join(dir, 'argv.json'), FAKE_BACKEND_PID_FILE: join(dir, 'pid'), ...env },
    pollIntervalMs: 50,
    readyTimeoutMs: 10_000,
    label: 'slot "primary"',
    ...extra,
  });
  started.push(backend);
  return backend;
}



describe('BackendProcess', () => {
  it('starts from a template without a shell and is ready once /health answers 200', async () => {
    const backend = await start({ FAKE_BACKEND_DELAY_MS: '300' });
    expect(backend.running).toBe(true);
    expect(JSON.parse(await readFile(join(dir, 'argv.json'), 'utf8'))).toEqual(['-m', '/models/a b.gguf', '--port', backend.argv[4], '--ctx-size', '4096']);
    const res = await fetch(backend.healthUrl);
    expect(res.status).toBe(200);
    const exit = await backend.stop();
    expect(exit.forced).toBe(false);
    expect(backend.running).toBe(false);
    expect(backend.outputTail().at(-1)).toBe('fake-backend: shutting down');
  });

  it('fails with slot.backend_failed and the last 20 output lines when the backend exits', async () => {
    const err = await expectFerryError(start({ FAKE_BACKEND_CRASH: '1' }));
    expect(err.code).toBe('slot.backend_failed');
    expect(err.message).toMatch(/slot "primary" exited with code 3 before it was healthy: .*invalid magic/);
    const lines = err.details?.lines as string[];
    expect(lines).toHaveLength(20);
    expect(lines.at(-1)).toBe('fake-backend: error: failed to load model: invalid magic');
    expect(lines).not.toContain('fake-backend: init step 1'); // only the tail is kept
  });

  it('fails and stops the backend when it never gets healthy', async () => {
    const err = await expectFerryError(start({ FAKE_BACKEND_NEVER_HEALTHY: '1' }, { readyTimeoutMs: 1500 }));
    expect(err.code).toBe('slot.backend_failed');
    expect(err.message).toMatch(/not healthy at http:\/\/127\.0\.0\.1:\d+\/health within 1\.5 s/);
    expect(isProcessAlive(Number(await readFile(join(dir, 'pid'), 'utf8')))).toBe(false);
  });

  it('stops a backend that ignores SIGTERM with SIGKILL after the grace period', async () => {
    const backend = await start({ FAKE_BACKEND_IGNORE_TERM: '1', FAKE_BACKEND_DELAY_MS: '0' }, { stopGraceMs: 300 });
    const pid = backend.pid!;
    const exit = await backend.stop();
    expect(exit).toMatchObject({ forced: true, signal: 'SIGKILL' });
    expect(isProcessAlive(pid)).toBe(false);
  });

  it('reports a program that does not exist as slot.backend_failed', async () => {
    const err = await expectFerryError(BackendProcess.start({ command: join(dir, 'no-such-server') + ' --port {port}', values: { port: 8081 }, readyTimeoutMs: 2000 }));
    expect(err.code).toBe('slot.backend_failed');
    expect(err.message).toMatch(/could not be started.*ENOENT/);
  });

  it('stops waiting when the start is cancelled', async () => {
    const ac = new AbortController();
    const pending = expectFerryError(start({ FAKE_BACKEND_NEVER_HEALTHY: '1' }, { signal: ac.signal }));
    // Abort once the backend is really running (it writes its pid first thing).
    while (!(await readFile(join(dir, 'pid'), 'utf8').catch(() => ''))) await new Promise((r) => setTimeout(r, 20));
    ac.abort();
    const err = await pending;
    expect(err.message).toMatch(/cancelled/);
    expect(isProcessAlive(Number(await readFile(join(dir, 'pid'), 'utf8')))).toBe(false);
  });
});
