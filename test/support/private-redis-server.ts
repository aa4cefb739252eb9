// A private redis-server with its own AOF directory and FLUSHDB, for the pull restart tests (#11).
// TODO(review): fold into private-redis.ts (#10's, which can also freeze and do TLS/passwords).
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Redis } from 'ioredis';

export interface PrivateRedis {
  url: string;
  port: number;
  /** Stops the server (SHUTDOWN: with `persist`, the data is written first). */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
  /** FLUSHDB on this private server only. */
  flush(): Promise<void>;
  /** Stops it for good and removes its directory. */
  close(): Promise<void>;
}

/** A free TCP port on `host` (asked of the kernel, then released). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A redis-server child of the test on its own port (never the shared one on 6379), so it can be
 * stopped, restarted and flushed. `persist`: append-only file in its own directory, so a restart
 * keeps the data (a real Redis restart); otherwise nothing is saved.
 */
export async function startPrivateRedis(opts: { bind?: string; persist?: boolean } = {}): Promise<PrivateRedis> {
  const bind = opts.bind ?? '127.0.0.1';
  const port = await freePort(bind);
  const dir = await mkdtemp(join(tmpdir(), 'ferry-redis-'));
  const url = `redis://${bind}:${port}`;
  let child: ResultPromise | undefined;
  const args = ['--port', String(port), '--bind', bind, '--dir', dir, '--save', '', '--appendonly', opts.persist ? 'yes' : 'no', '--appendfsync', 'always', '--protected-mode', 'no'];
  const start = async () => {
    child = execa('redis-server', args, { reject: false, buffer: false, stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    for (;;) {
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      const ok = await probe.connect().then(() => probe.ping()).then(() => true, () => false);
      probe.disconnect();
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`private redis-server on ${url} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const stop = async () => {
    if (!child) return;
    const running = child;
    child = undefined;
    running.kill('SIGTERM'); // redis-server saves (AOF) and exits on SIGTERM
    await running;
  };
  await start();
  return {
    url,
    port,
    start,
    stop,
    async flush() {
      const r = new Redis(url);
      try {
        await r.flushdb();
      } finally {
        r.disconnect();
      }
    },
    async close() {
      await stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
