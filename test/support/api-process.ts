import { execa, type ResultPromise } from 'execa';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { childEnv } from './temp-home.js';
import { REPO_ROOT } from './worker-process.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');

export interface ApiProcess {
  child: ResultPromise;
  pid: number;
  url: string;
  output: () => string;
  stop: () => Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

/** `ferry serve --no-worker` as a real child process; resolves once /healthz answers (any status). */
export async function startApiProcess(env: Record<string, string>, opts: { worker?: boolean; timeoutMs?: number } = {}): Promise<ApiProcess> {
  const port = Number(env.PORT ?? (await freePort()));
  const args = ['serve', ...(opts.worker ? [] : ['--no-worker'])];
  const child = execa('node', [CLI, ...args], { env: childEnv({ ...env, PORT: String(port) }), extendEnv: false, reject: false, all: true, buffer: false });
  let out = '';
  child.all?.on('data', (d: Buffer) => (out += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000);
  let exited = false;
  void child.then(() => (exited = true));
  for (;;) {
    if (exited) throw new Error(`ferry serve exited before listening: ${out}`);
    const up = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
      () => true,
      () => false,
    );
    if (up) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`ferry serve did not listen within the timeout: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child,
    pid: child.pid!,
    url,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      await child;
      clearTimeout(t);
    },
  };
}

/** `ferry <args>` to completion. */
export function runFerry(args: string[], env: Record<string, string>, timeoutMs = 20_000) {
  return execa('node', [CLI, ...args], { env: childEnv(env), extendEnv: false, reject: false, timeout: timeoutMs });
}
