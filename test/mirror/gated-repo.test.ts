import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { loadConfig } from '../../src/config/load-config.js';
import { REDIS_URL } from '../support/temp-home.js';
import { fileSnapshot, sha256, startMirrorHarness, type MirrorHarness } from './mirror-harness.js';

const REPO = 'acme/gated-GGUF';
const GGUF = 'Gated-Q4_K_M.gguf';

describe('a gated repo through the mirror: the Hub decides, for the client\'s own token', () => {
  let h: MirrorHarness;
  let expected: string;
  beforeAll(async () => {
    h = await startMirrorHarness({ hubToken: true });
    h.hub.addRepo({ id: REPO, gated: true, files: [{ path: GGUF, size: 2 * 1024 * 1024 + 1, seed: 11 }] });
    expected = await h.hub.sha256(REPO, GGUF);
  });
  afterAll(async () => h?.cleanup());

  const url = () => `${h.hubUrl}/${REPO}/resolve/main/${GGUF}`;
  const get = (auth?: string) => fetch(url(), { headers: auth ? { authorization: auth } : {} });

  it('refuses no token and a wrong one with 401 GatedRepo before anything is cached', async () => {
    for (const auth of [undefined, 'Bearer hf_wrong']) {
      const res = await get(auth);
      expect(res.status, String(auth)).toBe(401);
      expect(res.headers.get('x-error-code')).toBe('GatedRepo');
    }
  });

  it('serves the right token (pulled through), then refuses none or a wrong one for the cached file too', async () => {
    const ok = await get(`Bearer ${h.hub.token}`);
    expect(ok.status).toBe(200);
    expect(sha256(Buffer.from(await ok.arrayBuffer()))).toBe(expected);
    for (const auth of [undefined, 'Bearer hf_wrong', `Bearer ${h.hub.token}x`]) {
      for (const path of [url(), `${h.hubUrl}/api/models/${REPO}/revision/main`, `${h.hubUrl}/api/models/${REPO}/tree/main?recursive=true`]) {
        const res = await fetch(path, { headers: auth ? { authorization: auth } : {} });
        expect(res.status, `${auth} ${path}`).toBe(401);
        expect(res.headers.get('x-error-code')).toBe('GatedRepo');
      }
    }
    const again = await get(`Bearer ${h.hub.token}`);
    expect(again.status).toBe(200);
    expect(sha256(Buffer.from(await again.arrayBuffer()))).toBe(expected);
  });

  it('never stores the client\'s token: not on disk, not in Redis', async () => {
    for (const line of await fileSnapshot(h.home)) {
      const path = line.slice(0, line.lastIndexOf(' ', line.lastIndexOf(' ') - 1));
      if (path.endsWith('.gguf') || /[0-9a-f]{64}$/.test(path)) continue;
      expect((await readFile(path, 'utf8')).includes(h.hub.token), path).toBe(false);
    }
    const redis = new Redis(REDIS_URL);
    try {
      const keys = await redis.keys(`${h.ctx.config.queuePrefix}:*`);
      for (const key of keys) {
        const type = await redis.type(key);
        const value = type === 'string' ? await redis.get(key) : type === 'hash' ? JSON.stringify(await redis.hgetall(key)) : type === 'list' ? JSON.stringify(await redis.lrange(key, 0, -1)) : '';
        expect(value?.includes(h.hub.token), key).toBe(false);
      }
    } finally {
      redis.disconnect();
    }
  });

  it('offline mode refuses a gated repo even to the right token', async () => {
    const ctx = new FerryContext({ ...loadConfig(h.env), mirrorOffline: true });
    const app = await buildApp({ services: await ctx.apiServices() });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const res = await fetch(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/hub/${REPO}/resolve/main/${GGUF}`, { headers: { authorization: `Bearer ${h.hub.token}` } });
      expect(res.status).toBe(401);
      expect(res.headers.get('x-error-code')).toBe('GatedRepo');
    } finally {
      await app.close();
      await ctx.close();
    }
  });
});
