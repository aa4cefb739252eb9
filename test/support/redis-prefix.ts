import { Redis } from 'ioredis';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/**
 * Every BullMQ prefix a test file made (through makeTempHome), so the file's last afterAll
 * (test/support/redis-leak-check.ts) can prove none of them left a key in the shared Redis.
 * Kept on globalThis: the setup file and the test file must see the same set.
 */
export function trackedPrefixes(): Set<string> {
  const g = globalThis as { __ferryTestPrefixes?: Set<string> };
  return (g.__ferryTestPrefixes ??= new Set());
}

/** The keys under a prefix (at most `limit`), by SCAN, never KEYS. */
export async function keysUnder(prefix: string, limit = 1000): Promise<string[]> {
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
  const found: string[] = [];
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      found.push(...keys);
    } while (cursor !== '0' && found.length < limit);
  } finally {
    redis.disconnect();
  }
  return found;
}

/** Removes every key of a test's BullMQ prefix (queues and Ferry's own keys). */
export async function dropPrefix(prefix: string, redisUrl = REDIS_URL): Promise<void> {
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${escapeGlob(prefix)}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

/** `{` and `}` are literal in SCAN's glob, but `[`, `*`, `?` and `\` are not. */
function escapeGlob(text: string): string {
  return text.replace(/[[\]*?\\]/g, (c) => `\\${c}`);
}
