import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { buildApp } from '../../src/api/build-app.js';
import { BODY_LIMITS } from '../../src/api/request-bodies.js';
import { FerryContext } from '../../src/app/create-context.js';
import { dropPrefix } from '../support/pull-harness.js';
import { makeTempHome } from '../support/temp-home.js';

const WRITE = 'w'.repeat(20) + '-write-token';
const READ = 'r'.repeat(20) + '-read-token';
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect((res.json() as { error: { code: string } }).error.code).toBe(code);
}

let ctx: FerryContext;
let cleanup: () => Promise<void>;
let app: FastifyInstance;
let open: FastifyInstance;
let cors: FastifyInstance;

beforeAll(async () => {
  const temp = await makeTempHome();
  ctx = new FerryContext(temp.config);
  const services = await ctx.apiServices();
  const dashboardQueues = await ctx.dashboardQueues();
  app = await buildApp({
    services,
    dashboardQueues,
    guard: { tokens: [WRITE], readTokens: [READ], bindHost: '127.0.0.1', allowedHosts: ['ferry.lan', 'box.lan:9000'], corsOrigins: [] },
  });
  open = await buildApp({ services, dashboardQueues });
  cors = await buildApp({ services, guard: { tokens: [], readTokens: [], bindHost: '127.0.0.1', allowedHosts: [], corsOrigins: ['https://ui.example'] } });
  cleanup = async () => {
    await Promise.all([app.close(), open.close(), cors.close()]);
    await dropPrefix(temp.config.queuePrefix);
    await ctx.close();
    await temp.cleanup();
  };
});
afterAll(async () => cleanup());

describe('Host allow-list (before anything else, on every route)', () => {
  it('refuses a foreign Host with 421 auth.bad_host, even on /healthz and with a valid token', async () => {
    for (const url of ['/healthz', '/api/models', '/admin/queues']) {
      expectError(await app.inject({ method: 'GET', url, headers: { host: 'evil.example', ...bearer(WRITE) } }), 421, 'auth.bad_host');
    }
    expectError(await open.inject({ method: 'DELETE', url: '/api/models/x', headers: { host: 'evil.example:8080', origin: 'http://evil.example:8080' } }), 421, 'auth.bad_host');
  });

  it('answers loopback names with any port, the bind address, and allowed_hosts entries', async () => {
    for (const host of ['localhost', 'localhost:8080', '127.0.0.1:1234', '[::1]:8080', 'ferry.lan', 'ferry.lan:8080', 'box.lan:9000', 'LOCALHOST.:80']) {
      const res = await app.inject({ method: 'GET', url: '/api/models', headers: { host, ...bearer(WRITE) } });
      expect({ host, status: res.statusCode }).toEqual({ host, status: 200 });
    }
    for (const host of ['box.lan:9001', 'box.lan', 'ferry.lan.evil.example', '127.0.0.1.nip.io', 'a b', 'localhost:99999']) {
      const res = await app.inject({ method: 'GET', url: '/api/models', headers: { host, ...bearer(WRITE) } });
      expect({ host, status: res.statusCode }).toEqual({ host, status: 421 });
    }
  });
});

describe('tokens', () => {
  it('401 auth.required without a token, 403 auth.invalid with a wrong one, 200 with a right one', async () => {
    expectError(await app.inject({ method: 'GET', url: '/api/models' }), 401, 'auth.required');
    expectError(await app.inject({ method: 'GET', url: '/api/models', headers: bearer('x'.repeat(32)) }), 403, 'auth.invalid');
    expectError(await app.inject({ method: 'GET', url: '/api/models', headers: { authorization: `Basic ${Buffer.from(`u:${WRITE}`).toString('base64')}` } }), 401, 'auth.required');
    expect((await app.inject({ method: 'GET', url: '/api/models', headers: bearer(WRITE) })).statusCode).toBe(200);
  });

  it('GET /healthz is public (route option config.public)', async () => {
    const res = await app.inject({ method: 'GET', url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ ok: true, redis: { ok: true } });
    // The health check and the dashboard's static shell (it must load before it can ask for the token), nothing else.
    expect(app.routeList.filter((r) => r.public).map((r) => `${r.method} ${r.url}`).sort()).toEqual(['GET /', 'GET /assets/:file', 'GET /healthz', 'HEAD /', 'HEAD /assets/:file', 'HEAD /healthz']);
  });

  it('a read token may GET and HEAD, but nothing else: 403 auth.read_only', async () => {
    expect((await app.inject({ method: 'GET', url: '/api/models', headers: bearer(READ) })).statusCode).toBe(200);
    expect((await app.inject({ method: 'HEAD', url: '/api/models', headers: bearer(READ) })).statusCode).toBe(200);
    expectError(await app.inject({ method: 'DELETE', url: '/api/models/nothing', headers: bearer(READ) }), 403, 'auth.read_only');
    expectError(await app.inject({ method: 'POST', url: '/api/models/nothing/verify', headers: bearer(READ) }), 403, 'auth.read_only');
  });

  it('the dashboard takes HTTP Basic with the token as password, and asks for it with WWW-Authenticate', async () => {
    const asked = await app.inject({ method: 'GET', url: '/admin/queues' });
    expectError(asked, 401, 'auth.required');
    expect(asked.headers['www-authenticate']).toMatch(/^Basic realm="ferry"/);
    const page = await app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Basic ${Buffer.from(`admin:${WRITE}`).toString('base64')}` } });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toContain('text/html');
    expectError(await app.inject({ method: 'GET', url: '/admin/queues', headers: { authorization: `Basic ${Buffer.from('admin:wrong-token-0000000').toString('base64')}` } }), 403, 'auth.invalid');
    // Elsewhere a 401 does not invite a browser's Basic prompt.
    expect((await app.inject({ method: 'GET', url: '/api/models' })).headers['www-authenticate']).toBeUndefined();
  });
});

describe('cross-site requests', () => {
  it('refuses a write whose Origin is foreign or whose Sec-Fetch-Site is cross-site, body or no body', async () => {
    const cases = [
      { method: 'POST' as const, url: '/api/models/x/pull', headers: { origin: 'http://evil.example' } },
      { method: 'POST' as const, url: '/api/models/x/pull', headers: { origin: 'null' } },
      { method: 'POST' as const, url: '/api/models/x/pull/cancel', headers: { 'sec-fetch-site': 'cross-site' } },
      { method: 'DELETE' as const, url: '/api/models/x', headers: { origin: 'http://127.0.0.1.evil.example' } },
      { method: 'PATCH' as const, url: '/api/models/x', headers: { origin: 'https://evil.example', 'content-type': 'application/json' }, payload: '{"tags":[]}' },
    ];
    for (const c of cases) {
      expectError(await app.inject({ ...c, headers: { ...c.headers, ...bearer(WRITE) } }), 403, 'auth.cross_site');
      expectError(await open.inject(c), 403, 'auth.cross_site');
    }
  });

  it('lets same-origin writes through, and those with neither header (curl, the CLI)', async () => {
    const verify = (headers: Record<string, string>) => open.inject({ method: 'POST', url: '/api/models/not-there/verify', headers });
    for (const headers of [{} as Record<string, string>, { origin: 'http://127.0.0.1:8080' }, { origin: 'http://localhost:8080', 'sec-fetch-site': 'same-origin' }]) {
      expectError(await verify(headers), 404, 'model.not_found');
    }
  });

  it('sends no CORS header unless cors_origins lists the origin; answers preflights for those only', async () => {
    const plain = await open.inject({ method: 'GET', url: '/api/models', headers: { origin: 'https://ui.example' } });
    expect(Object.keys(plain.headers).filter((h) => h.startsWith('access-control-'))).toEqual([]);
    const pre = await cors.inject({ method: 'OPTIONS', url: '/api/models/x/pull', headers: { origin: 'https://ui.example', 'access-control-request-method': 'POST' } });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers).toMatchObject({ 'access-control-allow-origin': 'https://ui.example', 'access-control-allow-headers': 'authorization, content-type' });
    const other = await cors.inject({ method: 'OPTIONS', url: '/api/models/x/pull', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(other.statusCode).toBe(404);
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
    const listed = await cors.inject({ method: 'POST', url: '/api/models/not-there/verify', headers: { origin: 'https://ui.example' } });
    expectError(listed, 404, 'model.not_found');
    expect(listed.headers['access-control-allow-origin']).toBe('https://ui.example');
  });
});

describe('bodies', () => {
  it('text/plain (what a form or a no-cors fetch can send) is 415 request.unsupported_media_type', async () => {
    expectError(await open.inject({ method: 'POST', url: '/api/models/x/pull', headers: { 'content-type': 'text/plain' }, payload: '{"hf_repo":"a/b"}' }), 415, 'request.unsupported_media_type');
    expectError(await open.inject({ method: 'POST', url: '/api/slots/primary/assign', headers: { 'content-type': 'text/plain;charset=UTF-8' }, payload: '{"model":"m"}' }), 415, 'request.unsupported_media_type');
  });

  it('each route has its own body limit: 413 request.too_large past it', async () => {
    const big = { hf_repo: 'a/b', hf_file: Array.from({ length: 40 }, () => 'f'.repeat(500)) };
    expect(JSON.stringify(big).length).toBeGreaterThan(BODY_LIMITS.json);
    expectError(await open.inject({ method: 'POST', url: '/api/models/x/pull', payload: big }), 413, 'request.too_large');
    expectError(await open.inject({ method: 'POST', url: '/api/models/x/verify', payload: { pad: 'p'.repeat(BODY_LIMITS.none) } }), 413, 'request.too_large');
  });
});

describe('the queue dashboard', () => {
  it('refuses write actions by default (dashboard.read_only) and job adds always (dashboard.action_disabled)', async () => {
    const writes = [
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pull/pause' },
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pause' },
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pull/obliterate', payload: {} },
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pull/clean/completed' },
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pull/retry/failed' },
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pull/promote' },
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pull/resume' },
      { method: 'PUT' as const, url: '/admin/queues/api/queues/pull/some-job/clean' },
    ];
    for (const w of writes) expectError(await open.inject(w), 403, 'dashboard.read_only');
    expectError(await open.inject({ method: 'POST', url: '/admin/queues/api/queues/pull/add', payload: { name: 'pull', data: { model_id: '..' } } }), 403, 'dashboard.action_disabled');
    expect(await ctx.redis.exists(`${ctx.config.queuePrefix}:pull:meta-paused`)).toBe(0);
    expect(await (await ctx.pullQueueStore()).queue.count()).toBe(0);
  });
});
