import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { redactUrlSecrets } from './logger-options.js';

/**
 * One log line per request, at debug (fastify's own two lines per request are turned off in
 * build-app): a quiet console by default, every request with log_level = "debug".
 */
export const requestLog = fp(async (app: FastifyInstance) => {
  app.addHook('onResponse', async (request, reply) => {
    // A token in a query string never reaches the log.
    request.log.debug({ method: request.method, url: redactUrlSecrets(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10 }, 'request');
  });
});
