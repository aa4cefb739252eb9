import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { loadConfig } from '../../src/config/load-config.js';
import { dropPrefix } from '../support/pull-harness.js';
import { makeTempHome } from '../support/temp-home.js';

const WRITE = 'matrix-write-token-0123456789';
const READ = 'matrix-read-token-0123456789';
const WRITES = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

let ctx: FerryContext;
let app: FastifyInstance;
let home: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const temp = await makeTempHome();
  home = temp.home;
  await writeFile(join(home, 'config.toml'), `[registries.local]\nurl = "file://${join(home, 'bento')}"\n`);
  ctx = new FerryContext(loadConfig(temp.env));
  await mkdir(ctx.config.pullRoot, { recursive: true });
  const file = join(ctx.config.pullRoot, 'x.gguf');
  await writeFile(file, 'GGUF weights of x');
  await ctx.models.add({ id: 'x', path: file });
  app = await buildApp({
    services: await ctx.apiServices(),
    dashboardQueues: await ctx.dashboardQueues(),
    dashboardWritable: true,
    guard: { tokens: [WRITE], readTokens: [READ], bindHost: '127.0.0.1', allowedHosts: [], corsOrigins: [] },
  });
  await app.ready();
  cleanup = async () => {
    await app.close();
    await dropPrefix(ctx.config.queuePrefix);
    await ctx.close();
    await temp.cleanup();
  };
});
afterAll(async () => cleanup());

/** Every file under FERRY_HOME with its sha256, and every Redis key of this test's prefix with its type. */
async function snapshot(): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(`${relative(home, p)} ${createHash('sha256').update(await readFile(p)).digest('hex')} ${(await stat(p)).size}`);
    }
  };
  await walk(home);
  const keys = await ctx.redis.keys(`${ctx.config.queuePrefix}:*`);
  for (const k of keys.sort()) out.push(`redis ${k} ${await ctx.redis.type(k)}`);
  return out.filter((l) => !l.includes('.registry.toml.cache.json'));
}

const concrete = (url: string) => url.replace(/:[A-Za-z]+/g, 'x').replace(/\*$/, 'x');

it('every route refuses each hostile request, and nothing changes on disk or in Redis', async () => {
  const routes = app.routeList.filter((r) => r.method !== 'OPTIONS');
  expect(routes.length).toBeGreaterThan(20);
  expect(routes.map((r) => r.url)).toContain('/api/registries/:name/import');
  const before = await snapshot();
  const failures: string[] = [];
  const check = async (label: string, method: string, url: string, headers: Record<string, string>, payload: string | undefined, status: number, code: string) => {
    const res = await app.inject({ method: method as HTTPMethods, url, headers, ...(payload !== undefined ? { payload } : {}) });
    const got = method === 'HEAD' ? '' : (res.json() as { error?: { code: string } }).error?.code;
    if (res.statusCode !== status || (method !== 'HEAD' && got !== code)) failures.push(`${label}: ${method} ${url} -> ${res.statusCode} ${got ?? res.body.slice(0, 100)}`);
  };
  for (const route of routes) {
    const url = concrete(route.url);
    const write = WRITES.has(route.method);
    const auth = { authorization: `Bearer ${WRITE}` };
    if (!route.public) await check('no token', route.method, url, {}, undefined, 401, 'auth.required');
    await check('foreign Host', route.method, url, { host: 'evil.example', ...auth }, undefined, 421, 'auth.bad_host');
    if (!write) continue;
    await check('read token', route.method, url, { authorization: `Bearer ${READ}` }, undefined, 403, 'auth.read_only');
    await check('cross-site Origin', route.method, url, { ...auth, origin: 'http://evil.example', 'content-type': 'application/json' }, '{}', 403, 'auth.cross_site');
    await check('bodyless cross-site', route.method, url, { ...auth, 'sec-fetch-site': 'cross-site' }, undefined, 403, 'auth.cross_site');
    // The dashboard's job-data actions are refused whatever the body (before it is read).
    const [status, code] = /\/(add|update-data)$/.test(url) ? [403, 'dashboard.action_disabled'] : [415, 'request.unsupported_media_type'];
    await check('text/plain body', route.method, url, { ...auth, 'content-type': 'text/plain' }, '{"model":"x","hf_repo":"a/b"}', status, code);
  }
  expect(failures).toEqual([]);
  expect(await snapshot()).toEqual(before);
});
