import { Writable } from 'node:stream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/build-app.js';
import { apiLoggerOptions, redactUrlSecrets } from '../../src/api/logger-options.js';
import { FerryContext } from '../../src/app/create-context.js';
import { dropPrefix } from '../support/pull-harness.js';
import { makeTempHome } from '../support/temp-home.js';

const TOKEN = 'tok-logger-test-secret-0123456789';
const lines: string[] = [];
let app: FastifyInstance;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const temp = await makeTempHome();
  const ctx = new FerryContext(temp.config);
  const stream = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  app = await buildApp({
    services: await ctx.apiServices(),
    guard: { tokens: [TOKEN], readTokens: [], bindHost: '127.0.0.1', allowedHosts: [], corsOrigins: [] },
    logger: { ...apiLoggerOptions({ level: 'debug' }), stream },
  });
  cleanup = async () => {
    await app.close();
    await dropPrefix(temp.config.queuePrefix);
    await ctx.close();
    await temp.cleanup();
  };
});
afterAll(async () => cleanup());

it('request logs carry neither the Authorization header nor tokens in the URL', async () => {
  const res = await app.inject({ method: 'GET', url: `/api/models?token=${TOKEN}&x=1`, headers: { authorization: `Bearer ${TOKEN}` } });
  expect(res.statusCode).toBe(200);
  await app.inject({ method: 'GET', url: `/api/nothing?access_token=${TOKEN}`, headers: { authorization: `Bearer ${TOKEN}` } });
  // Anything that logs a request's headers gets them censored.
  app.log.info({ req: { headers: { authorization: `Bearer ${TOKEN}`, cookie: `s=${TOKEN}` } } }, 'headers logged');
  app.log.info({ headers: { authorization: `Bearer ${TOKEN}` } }, 'bare headers logged');
  const log = lines.join('');
  expect(log).toContain('"msg":"request"'); // the one line per request, at debug (src/api/request-log.ts)
  expect(log).toContain('/api/models?token=[redacted]&x=1');
  expect(log).toContain('headers logged');
  expect(log).toContain('[redacted]');
  expect(log).not.toContain(TOKEN);
});

it('redactUrlSecrets: userinfo and token-like query values', () => {
  expect(redactUrlSecrets('/a?x=1&api_key=k&sig=s')).toBe('/a?x=1&api_key=[redacted]&sig=[redacted]');
  expect(redactUrlSecrets('redis://:pw@h:6379/0')).toBe('redis://***@h:6379/0');
  expect(redactUrlSecrets('/plain')).toBe('/plain');
});
