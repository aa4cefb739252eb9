import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { freePort } from './api-process.js';

export interface PrivateRedis {
  /** redis:// (or rediss:// with tls) URL, with the password when one is set. */
  url: string;
  port: number;
  readonly pid: number;
  /** SIGTERM and wait: the port then refuses connections. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: no persistence). */
  start(): Promise<void>;
  freeze(): void;
  thaw(): void;
}

/**
 * A redis-server child of this test only, on a random port, no persistence: for tests that
 * stop, freeze or restart Redis without touching the shared one on 6379.
 */
export async function startPrivateRedis(opts: { password?: string; tls?: { certPath: string; keyPath: string }; aofDir?: string } = {}): Promise<PrivateRedis> {
  const port = await freePort();
  let child: ResultPromise | undefined;
  const args = () => [
    ...(opts.tls ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', opts.tls.certPath, '--tls-key-file', opts.tls.keyPath, '--tls-auth-clients', 'no'] : ['--port', String(port)]),
    '--bind', '127.0.0.1', '--save', '',
    // With aofDir, data survives a restart (AOF fsynced always); otherwise nothing is persisted.
    ...(opts.aofDir ? ['--dir', opts.aofDir, '--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
    ...(opts.password ? ['--requirepass', opts.password] : []),
  ];
  const scheme = opts.tls ? 'rediss' : 'redis';
  const auth = opts.password ? `:${encodeURIComponent(opts.password)}@` : '';
  const url = `${scheme}://${auth}${opts.tls ? 'localhost' : '127.0.0.1'}:${port}`;
  const start = async () => {
    child = execa('redis-server', args(), { reject: false, stdio: 'ignore', cleanup: true });
    const deadline = Date.now() + 10_000;
    for (;;) {
      // This process does not trust the test certificate (children get NODE_EXTRA_CA_CERTS): name it as the CA.
      const tls = opts.tls ? { tls: { ca: readFileSync(opts.tls.certPath) } } : {};
      const client = new Redis(url, { lazyConnect: true, connectTimeout: 300, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null, ...tls });
      client.on('error', () => undefined);
      const ok = await client.connect().then(() => client.ping(), () => undefined).catch(() => undefined);
      client.disconnect();
      if (ok === 'PONG') return;
      if (Date.now() > deadline) throw new Error(`private redis-server on ${port} did not start`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  await start();
  return {
    url,
    port,
    get pid() {
      return child!.pid!;
    },
    async stop() {
      const c = child!;
      c.kill('SIGCONT');
      c.kill('SIGTERM');
      await c;
    },
    start,
    freeze: () => child!.kill('SIGSTOP'),
    thaw: () => child!.kill('SIGCONT'),
  };
}
