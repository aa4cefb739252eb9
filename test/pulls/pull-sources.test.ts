import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Redis } from 'ioredis';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { REDIS_URL } from '../support/temp-home.js';
import { spawnWorker } from '../support/worker-process.js';

describe('Hub sources', () => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness();
  });
  afterEach(async () => h.cleanup());

  it('pulls a split GGUF as one model with all its shards', async () => {
    const shards = [1, 2, 3].map((i) => ({ path: `big/Big-Q4_K_M-0000${i}-of-00003.gguf`, size: 1024 * 1024 + i, seed: i }));
    h.hub.addRepo({ id: 'acme/big-GGUF', files: [...shards, { path: 'big/Big-Q8_0.gguf', size: 10, seed: 9 }] });
    const res = await h.app.inject({ method: 'POST', url: '/api/models/big/pull', payload: { hf_repo: 'acme/big-GGUF', hf_file: 'big/Big-Q4_K_M-00001-of-00003.gguf' } });
    expect(res.statusCode).toBe(202);
    const done = await h.waitForState('big', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect(done.files.map((f) => f.hf_filename)).toEqual(shards.map((s) => s.path));
    const entry = (await h.app.inject({ method: 'GET', url: '/api/models/big' })).json();
    expect(entry.files).toHaveLength(3);
    expect(entry.path).toMatch(/Big-Q4_K_M-00001-of-00003\.gguf$/);
    expect(entry.size_bytes).toBe(shards.reduce((n, s) => n + s.size, 0));
    for (const [i, s] of shards.entries()) expect(entry.files[i].sha256).toBe(await h.hub.sha256('acme/big-GGUF', s.path));
  });

  it('takes a glob for hf_file', async () => {
    h.hub.addRepo({ id: 'acme/glob', files: [{ path: 'a-Q4_K_M.gguf', size: 100, seed: 1 }, { path: 'a-Q8_0.gguf', size: 100, seed: 2 }] });
    await h.app.inject({ method: 'POST', url: '/api/models/globbed/pull', payload: { hf_repo: 'acme/glob', hf_file: '*Q8_0.gguf' } });
    const done = await h.waitForState('globbed', ['completed', 'failed']);
    expect(done.files.map((f) => f.hf_filename)).toEqual(['a-Q8_0.gguf']);
  });

  it('derives the id from an hf.co/{org}/{repo}:{QUANT} shorthand', async () => {
    h.hub.addRepo({ id: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF', files: [{ path: 'qwen2.5-0.5b-instruct-q8_0.gguf', size: 2000, seed: 1 }, { path: 'qwen2.5-0.5b-instruct-q4_k_m.gguf', size: 1000, seed: 2 }] });
    const ref = encodeURIComponent('hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M');
    const res = await h.app.inject({ method: 'POST', url: `/api/models/${ref}/pull` });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ model_id: 'qwen2.5-0.5b-instruct-q4_k_m', derived_from: 'hf.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M', hf_file: 'qwen2.5-0.5b-instruct-q4_k_m.gguf' });
    const done = await h.waitForState('qwen2.5-0.5b-instruct-q4_k_m', ['completed', 'failed']);
    expect(done.state).toBe('completed');
  });

  it('verifies a small file kept in git by its git sha1 and says so', async () => {
    h.hub.addRepo({ id: 'acme/cfg', files: [{ path: 'config.json', content: Buffer.from('{"a":1}\n'), lfs: false }] });
    await h.app.inject({ method: 'POST', url: '/api/models/cfg/pull', payload: { hf_repo: 'acme/cfg', hf_file: 'config.json' } });
    const done = await h.waitForState('cfg', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
    expect(done.files[0].verified_by).toBe('git-sha1');
  });

  it('follows a relative redirect of a renamed repo', async () => {
    h.hub.addRepo({ id: 'acme/old', files: [{ path: 'm.gguf', size: 5000, seed: 4 }] });
    h.hub.rename('acme/old', 'acme/new');
    await h.app.inject({ method: 'POST', url: '/api/models/renamed/pull', payload: { hf_repo: 'acme/old', hf_file: 'm.gguf' } });
    const done = await h.waitForState('renamed', ['completed', 'failed']);
    expect(done.state, JSON.stringify(done)).toBe('completed');
  });

  it('maps missing repos and files to source.not_found (404) up front', async () => {
    const repo = await h.app.inject({ method: 'POST', url: '/api/models/nope/pull', payload: { hf_repo: 'acme/missing', hf_file: 'x.gguf' } });
    expect(repo.statusCode).toBe(404);
    expect(repo.json().error.code).toBe('source.not_found');
    h.hub.addRepo({ id: 'acme/there', files: [{ path: 'a.gguf', size: 10, seed: 1 }] });
    const file = await h.app.inject({ method: 'POST', url: '/api/models/nope/pull', payload: { hf_repo: 'acme/there', hf_file: 'b.gguf' } });
    expect(file.statusCode).toBe(404);
    expect(file.json().error.message).toContain('b.gguf');
  });
});

describe('gated repos and the token', () => {
  it('fails a gated pull without a token with a clear message', async () => {
    const h = await startPullHarness();
    try {
      h.hub.addRepo({ id: 'meta/gated', gated: true, files: [{ path: 'g.gguf', size: 1000, seed: 1 }] });
      const res = await h.app.inject({ method: 'POST', url: '/api/models/gated/pull', payload: { hf_repo: 'meta/gated', hf_file: 'g.gguf' } });
      expect(res.statusCode).toBe(202); // the API holds no token; a worker might
      const done = await h.waitForState('gated', ['completed', 'failed']);
      expect(done.state).toBe('failed');
      expect(done.error_code).toBe('source.gated');
      expect(done.error).toContain('accept the licence on the model page and set HF_TOKEN');
      expect(done.attempts).toBeLessThanOrEqual(1);
    } finally {
      await h.cleanup();
    }
  });

  it('uses the token for the hub only; it never reaches the CDN, Redis, the status or the logs', async () => {
    const h = await startPullHarness({ worker: false });
    const worker = spawnWorker({ ...h.env, HF_TOKEN: h.hub.token });
    try {
      await worker.ready;
      h.hub.addRepo({ id: 'meta/gated', gated: true, files: [{ path: 'g.gguf', size: 200_000, seed: 1 }] });
      await h.app.inject({ method: 'POST', url: '/api/models/gated/pull', payload: { hf_repo: 'meta/gated', hf_file: 'g.gguf' } });
      const done = await h.waitForState('gated', ['completed', 'failed']);
      expect(done.state, JSON.stringify(done)).toBe('completed');
      const hubWithToken = h.hub.log.filter((l) => l.host === 'hub' && l.authorization === `Bearer ${h.hub.token}`);
      expect(hubWithToken.length).toBeGreaterThan(0);
      expect(h.hub.log.filter((l) => l.host === 'cdn').length).toBeGreaterThan(0);
      expect(h.hub.log.filter((l) => l.host === 'cdn' && l.authorization)).toEqual([]);
      expect(JSON.stringify(done)).not.toContain(h.hub.token);
      expect(worker.output()).not.toContain(h.hub.token);
      expect(await redisContains(h.ctx.config.queuePrefix, h.hub.token)).toBe(false);
      // The search itself finds a token hidden in a long hash value (so the line above can fail).
      const canary = new Redis(REDIS_URL);
      await canary.hset(`${h.ctx.config.queuePrefix}:canary`, 'data', JSON.stringify({ pad: 'x'.repeat(5000), auth: `Bearer ${h.hub.token}` }));
      canary.disconnect();
      expect(await redisContains(h.ctx.config.queuePrefix, h.hub.token)).toBe(true);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.child;
      await h.cleanup();
    }
  });
});

/**
 * Reads every key of the prefix by its type (strings, hashes, lists, sets, sorted sets, streams)
 * and looks for a string in the values. Not DUMP: Redis LZF-compresses long values in a dump,
 * where a token could hide.
 */
async function redisContains(prefix: string, needle: string): Promise<boolean> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 500);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    expect(keys.length).toBeGreaterThan(0);
    for (const key of keys) {
      if (key.includes(needle) || JSON.stringify(await valuesOf(redis, key)).includes(needle)) return true;
    }
    return false;
  } finally {
    redis.disconnect();
  }
}

async function valuesOf(redis: Redis, key: string): Promise<unknown> {
  switch (await redis.type(key)) {
    case 'string':
      return redis.get(key);
    case 'hash':
      return redis.hgetall(key);
    case 'list':
      return redis.lrange(key, 0, -1);
    case 'set':
      return redis.smembers(key);
    case 'zset':
      return redis.zrange(key, '0', '-1');
    case 'stream':
      return redis.xrange(key, '-', '+');
    default:
      return null;
  }
}
