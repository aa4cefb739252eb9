import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { makeTempHome } from '../support/temp-home.js';

describe('schema errors name the field', () => {
  let ctx: FerryContext;
  let app: FastifyInstance;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    const temp = await makeTempHome();
    cleanup = temp.cleanup;
    ctx = new FerryContext(temp.config);
    app = await buildApp({ services: await ctx.apiServices() });
  });
  afterAll(async () => {
    await app.close();
    await ctx.close();
    await cleanup();
  });

  const cases: Array<[string, 'POST' | 'PATCH', string, unknown, string]> = [
    ['an unknown field', 'PATCH', '/api/models/some-model', { tagz: ['x'] }, 'invalid request: body.tagz: is not a known field'],
    ['a wrong type', 'POST', '/api/models/some-model/pull', { hf_repo: 5 }, 'invalid request: body.hf_repo: must be string'],
    ['a missing field', 'POST', '/api/slots/primary/assign', {}, 'invalid request: body.model: is required'],
    ['a wrong array item', 'PATCH', '/api/models/some-model', { tags: ['ok', 7] }, 'invalid request: body.tags.1: must be string'],
  ];
  for (const [what, method, url, payload, message] of cases) {
    it(`${what}: 400 request.invalid, "${message}"`, async () => {
      const res = await app.inject({ method, url, payload: payload as object });
      expect(res.statusCode).toBe(400);
      expect(res.json()).toEqual({ error: { code: 'request.invalid', message } });
    });
  }
});
