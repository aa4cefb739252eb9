import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { HealthService } from '../../src/services/health-service.js';
import { makeTempHome } from '../support/temp-home.js';

let ctx: FerryContext;
let app: FastifyInstance;
let cleanup: () => Promise<void>;
let registryFile: string;

let downRedis: Redis | undefined;

/** The app as `ferry serve` wires it; `healthRedisUrl` points /healthz's Redis elsewhere (a closed port). */
async function start(healthRedisUrl?: string): Promise<void> {
  const temp = await makeTempHome();
  cleanup = temp.cleanup;
  ctx = new FerryContext(temp.config);
  registryFile = join(ctx.config.registryDir, 'registry.toml');
  await mkdir(ctx.config.pullRoot, { recursive: true });
  const services = await ctx.apiServices();
  if (healthRedisUrl) {
    downRedis = new Redis(healthRedisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
    downRedis.on('error', () => undefined);
    services.health = new HealthService({ redis: downRedis, registry: ctx.registry });
  }
  app = await buildApp({ services });
}

async function seed(): Promise<void> {
  await writeFile(join(ctx.config.pullRoot, 'small.gguf'), 'weights');
  await ctx.registry.mutate((d) => {
    d.set({ id: 'small', path: join(ctx.config.pullRoot, 'small.gguf'), size_bytes: 7, hf_repo: 'org-a/small-GGUF', created_at: '2025-02-03T04:05:06.000Z', defaults: { context_size: 2048 } });
    d.set({ id: 'qwen3:4b', path: '/flm/qwen3-4b', backends: ['npu'], metadata: { runtime: 'flm' } });
  });
}

async function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

afterEach(async () => {
  downRedis?.disconnect();
  downRedis = undefined;
  await app?.close();
  await ctx?.close();
  await cleanup?.();
});

function expectError(res: { statusCode: number; json(): unknown }, status: number, code: string): void {
  expect(res.statusCode).toBe(status);
  const body = res.json() as { error: { code: string; message: string } };
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.message.length).toBeGreaterThan(0);
}

describe('models API', () => {
  beforeEach(async () => {
    await start();
    await seed();
  });

  it('GET /v1/models is an OpenAI list, one entry per registry model', async () => {
    const res = await app.inject({ method: 'GET', url: '/v1/models' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      object: 'list',
      data: [
        { id: 'qwen3:4b', object: 'model', created: 0, owned_by: 'flm' },
        { id: 'small', object: 'model', created: Date.UTC(2025, 1, 3, 4, 5, 6) / 1000, owned_by: 'org-a' },
      ],
    });
  });

  it('GET /api/models lists every row with unknown keys kept', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/models' });
    expect(res.statusCode).toBe(200);
    const { models } = res.json() as { models: Array<Record<string, unknown>> };
    expect(models.map((m) => m.id)).toEqual(['qwen3:4b', 'small']);
    expect(models[1]).toMatchObject({ size_bytes: 7, defaults: { context_size: 2048 } });
  });

  it('GET /api/models reflects a write by another process (no stale body)', async () => {
    await app.inject({ method: 'GET', url: '/api/models' });
    const { RegistryStore } = await import('../../src/registry/registry-store.js');
    await new RegistryStore(ctx.config.registryDir).mutate((d) => d.set({ id: 'late', path: '/m/late' }));
    const res = await app.inject({ method: 'GET', url: '/api/models' });
    expect((res.json() as { models: Array<{ id: string }> }).models.map((m) => m.id)).toEqual(['late', 'qwen3:4b', 'small']);
  });

  it('GET /api/models/:id: the row, 404 model.not_found for an unknown id', async () => {
    const ok = await app.inject({ method: 'GET', url: '/api/models/qwen3:4b' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ id: 'qwen3:4b', path: '/flm/qwen3-4b', backends: ['npu'], metadata: { runtime: 'flm' } });
    expectError(await app.inject({ method: 'GET', url: '/api/models/nope' }), 404, 'model.not_found');
  });

  it.each([
    ['dot dot and a slash', '..%2Fetc'],
    ['dot dot inside', 'a..b'],
    ['encoded slash', 'a%2Fb'],
    ['encoded backslash', 'a%5Cb'],
    ['space', 'a%20b'],
    ['NUL', 'a%00b'],
    ['newline', 'a%0Ab'],
    ['escape', 'a%1Bb'],
    ['upper case', 'ABC'],
    ['too long', 'x'.repeat(129)],
  ])('ids with %s are 400 model.invalid_id on GET, DELETE and PATCH', async (_label, raw) => {
    expectError(await app.inject({ method: 'GET', url: `/api/models/${raw}` }), 400, 'model.invalid_id');
    expectError(await app.inject({ method: 'DELETE', url: `/api/models/${raw}` }), 400, 'model.invalid_id');
    expectError(await app.inject({ method: 'PATCH', url: `/api/models/${raw}`, payload: { name: 'x' } }), 400, 'model.invalid_id');
  });

  it('an id of 128 characters is valid (404 when absent, not 414); 129 is model.invalid_id', async () => {
    expectError(await app.inject({ method: 'GET', url: `/api/models/${'x'.repeat(128)}` }), 404, 'model.not_found');
    expectError(await app.inject({ method: 'GET', url: `/api/models/${'x'.repeat(129)}` }), 400, 'model.invalid_id');
  });

  it('a raw %2E%2E path segment over real HTTP is model.invalid_id (clients do not always normalise)', async () => {
    const address = await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = new URL(address);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/api/models/%2E%2E', method: 'GET' }, (r) => {
        let body = '';
        r.on('data', (c) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode!, body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body).error.code).toBe('model.invalid_id');
  });

  it('DELETE removes the row and the weights it owns; a second DELETE is 404', async () => {
    const res = await app.inject({ method: 'DELETE', url: '/api/models/small' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ removed: 'small', deleted_files: [join(ctx.config.pullRoot, 'small.gguf')] });
    expectError(await app.inject({ method: 'DELETE', url: '/api/models/small' }), 404, 'model.not_found');
    expect((await ctx.registry.list()).map((m) => m.id)).toEqual(['qwen3:4b']);
  });

  it('PATCH updates metadata', async () => {
    const res = await app.inject({ method: 'PATCH', url: '/api/models/small', payload: { name: 'Small', metadata: { context_length: 2048 } } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ id: 'small', name: 'Small', metadata: { context_length: 2048 } });
  });

  describe('bad requests are 4xx and change nothing', () => {
    let before: string;
    beforeEach(async () => {
      before = await readFile(registryFile, 'utf8');
    });
    afterEach(async () => {
      expect(await readFile(registryFile, 'utf8')).toBe(before);
    });

    it.each([
      ['unknown field', { path: '/etc/passwd' }],
      ['wrong type', { name: 42 }],
      ['wrong array item', { tags: ['ok', 7] }],
      ['too many items', { tags: Array.from({ length: 65 }, (_, i) => `t${i}`) }],
      ['not an object', ['name']],
      ['null', null],
      ['metadata not a table', { metadata: 'x' }],
      ['nested null in metadata', { metadata: { a: { b: null } } }],
    ])('PATCH with %s: 400', async (_label, payload) => {
      const res = await app.inject({ method: 'PATCH', url: '/api/models/small', payload: JSON.stringify(payload), headers: { 'content-type': 'application/json' } });
      expect(res.statusCode).toBe(400);
      expect((res.json() as { error: { code: string } }).error.code).toMatch(/^request\./);
    });

    it('malformed JSON: 400 request.invalid', async () => {
      const res = await app.inject({ method: 'PATCH', url: '/api/models/small', payload: '{"name": ', headers: { 'content-type': 'application/json' } });
      expectError(res, 400, 'request.invalid');
    });

    it('an empty JSON body: 400', async () => {
      const res = await app.inject({ method: 'PATCH', url: '/api/models/small', payload: '', headers: { 'content-type': 'application/json' } });
      expectError(res, 400, 'request.invalid');
    });

    it('an unsupported content type: 415 request.unsupported_media_type', async () => {
      const res = await app.inject({ method: 'PATCH', url: '/api/models/small', payload: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      expect(res.statusCode).toBe(415);
      expect((res.json() as { error: { code: string } }).error.code).toBe('request.unsupported_media_type');
    });

    it('a huge body: 413 request.too_large', async () => {
      const res = await app.inject({ method: 'PATCH', url: '/api/models/small', payload: { name: 'x', metadata: { blob: 'y'.repeat(200_000) } } });
      expectError(res, 413, 'request.too_large');
    });

    it('an unknown route: 404 route.not_found, for any method', async () => {
      expectError(await app.inject({ method: 'GET', url: '/api/nothing-here' }), 404, 'route.not_found');
      expectError(await app.inject({ method: 'POST', url: '/api/models', payload: {} }), 404, 'route.not_found');
      expectError(await app.inject({ method: 'PUT', url: '/v1/models' }), 404, 'route.not_found');
    });
  });
});

describe('GET /healthz', () => {
  it('200 with a real Redis and a readable registry', async () => {
    await start();
    await seed();
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true, redis: { ok: true }, registry: { ok: true, models: 2 } });
  });

  it('503 when Redis is a closed port', async () => {
    await start(`redis://127.0.0.1:${await closedPort()}`);
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(503);
    const body = res.json() as { ok: boolean; redis: { ok: boolean; error?: string }; registry: { ok: boolean } };
    expect(body.ok).toBe(false);
    expect(body.redis.ok).toBe(false);
    expect(body.redis.error).toBeTruthy();
    expect(body.registry.ok).toBe(true);
  });

  it('503 when the registry is corrupt, and the API lists are errors, never an empty list', async () => {
    await start();
    await mkdir(ctx.config.registryDir, { recursive: true });
    await writeFile(registryFile, '[models."a"]\npath = "/m/a"\n[models."a"]\npath = "/m/a"\n');
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(503);
    const body = res.json() as { redis: { ok: boolean }; registry: { ok: boolean; error: string } };
    expect(body.redis.ok).toBe(true);
    expect(body.registry.ok).toBe(false);
    expect(body.registry.error).toContain(`${registryFile}:3:`);
    expectError(await app.inject({ method: 'GET', url: '/api/models' }), 500, 'registry.corrupt');
    expectError(await app.inject({ method: 'GET', url: '/v1/models' }), 500, 'registry.corrupt');
  });
});
