import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { dropPrefix } from '../support/pull-harness.js';
import { makeTempHome } from '../support/temp-home.js';

let app: FastifyInstance;
let ctx: FerryContext;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  const temp = await makeTempHome();
  ctx = new FerryContext(temp.config);
  app = await buildApp({ services: await ctx.apiServices(), dashboardQueues: await ctx.dashboardQueues() });
  cleanup = async () => {
    await app.close();
    await dropPrefix(temp.config.queuePrefix);
    await ctx.close();
    await temp.cleanup();
  };
});
afterAll(async () => cleanup());

it('serves the queue dashboard at /admin/queues with the pull, verify and warm queues', async () => {
  const page = await app.inject({ method: 'GET', url: '/admin/queues' });
  expect(page.statusCode).toBe(200);
  expect(page.headers['content-type']).toContain('text/html');
  const api = await app.inject({ method: 'GET', url: '/admin/queues/api/queues' });
  expect(api.statusCode).toBe(200);
  const names = (api.json().queues as Array<{ name: string }>).map((q) => q.name).sort();
  expect(names).toEqual(['pull', 'verify', 'warm']);
});

it('with dashboard_writable, pause and resume run; adding a job (model_id "..") or editing job data stays refused', async () => {
  const writable = await buildApp({ services: await ctx.apiServices(), dashboardQueues: await ctx.dashboardQueues(), dashboardWritable: true });
  try {
    const queue = (await ctx.pullQueueStore()).queue;
    expect((await writable.inject({ method: 'PUT', url: '/admin/queues/api/queues/pull/pause' })).statusCode).toBe(200);
    expect(await queue.isPaused()).toBe(true);
    expect((await writable.inject({ method: 'PUT', url: '/admin/queues/api/queues/pull/resume' })).statusCode).toBe(200);
    expect(await queue.isPaused()).toBe(false);
    for (const body of [{ name: 'pull', data: { model_id: '..', source: 'hf', hf_repo: 'a/b', files: [] } }, { name: 'pull' }]) {
      const add = await writable.inject({ method: 'POST', url: '/admin/queues/api/queues/pull/add', payload: body });
      expect(add.statusCode).toBe(403);
      expect(add.json().error.code).toBe('dashboard.action_disabled');
    }
    const edit = await writable.inject({ method: 'PATCH', url: '/admin/queues/api/queues/pull/123/update-data', payload: { jobData: { model_id: '..' } } });
    expect(edit.json().error.code).toBe('dashboard.action_disabled');
    expect(await queue.count()).toBe(0);
    // Still cross-site protected: a page elsewhere cannot pause the queue through a logged-in browser.
    const csrf = await writable.inject({ method: 'PUT', url: '/admin/queues/api/queues/pull/pause', headers: { origin: 'http://evil.example' } });
    expect(csrf.json().error.code).toBe('auth.cross_site');
    expect(await queue.isPaused()).toBe(false);
  } finally {
    await writable.close();
  }
});

it('read-only by default: the board says so to its UI and refuses pause', async () => {
  const res = await app.inject({ method: 'PUT', url: '/admin/queues/api/queues/pull/pause' });
  expect(res.statusCode).toBe(403);
  expect(res.json().error.code).toBe('dashboard.read_only');
  const api = await app.inject({ method: 'GET', url: '/admin/queues/api/queues' });
  expect((api.json().queues as Array<{ readOnlyMode: boolean }>).every((q) => q.readOnlyMode)).toBe(true);
});
