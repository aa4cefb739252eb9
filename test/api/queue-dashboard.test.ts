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
