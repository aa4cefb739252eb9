import { mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type * as Execa from 'execa';
import type { ResultPromise } from 'execa';
import { lazyModule } from '../util/lazy-module.js';

const loadExeca = lazyModule<typeof Execa>('execa');
import { Redis } from 'ioredis';
import { FerryError } from '../errors/ferry-error.js';

export interface ResolvedRedis {
  url: string;
  /** Set when Ferry started its own redis-server; stops it. */
  stop?: () => Promise<void>;
  source: 'env' | 'local' | 'child';
}

const DEFAULT_URL = 'redis://127.0.0.1:6379';

/**
 * REDIS_URL (or config) if set; else a Redis already answering on 127.0.0.1:6379; else a
 * redis-server child with AOF on under FERRY_HOME/redis, stopped when Ferry exits.
 */
export async function resolveRedis(configured: string | undefined, home: string): Promise<ResolvedRedis> {
  if (configured) return { url: configured, source: 'env' };
  if (await answersPing(DEFAULT_URL)) return { url: DEFAULT_URL, source: 'local' };
  return startRedisChild(join(home, 'redis'));
}

export async function answersPing(url: string, timeoutMs = 500): Promise<boolean> {
  const client = new Redis(url, { lazyConnect: true, connectTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function startRedisChild(dir: string): Promise<ResolvedRedis> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  let child: ResultPromise;
  try {
    child = loadExeca().execa('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore', reject: false });
  } catch {
    throw missingRedis();
  }
  const url = `redis://127.0.0.1:${port}`;
  const spawnFailed = new Promise<never>((_, reject) => {
    child.once('error', () => reject(missingRedis()));
    void child.then((r) => reject(r.failed && (r as { code?: string }).code === 'ENOENT' ? missingRedis() : new FerryError('redis.unavailable', `redis-server exited (${r.exitCode ?? r.signal})`)));
  });
  const ready = (async () => {
    for (let i = 0; i < 100; i++) {
      if (await answersPing(url, 200)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new FerryError('redis.unavailable', 'redis-server did not start within 5 s');
  })();
  await Promise.race([ready, spawnFailed]);
  spawnFailed.catch(() => undefined);
  return {
    url,
    source: 'child',
    stop: async () => {
      child.kill('SIGTERM');
      await child.catch(() => undefined);
    },
  };
}

function missingRedis(): FerryError {
  return new FerryError('redis.unavailable', 'no Redis at 127.0.0.1:6379 and no redis-server on PATH', {
    hint: 'install one (Debian/Ubuntu: sudo apt-get install redis-server; macOS: brew install redis) or set REDIS_URL',
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
