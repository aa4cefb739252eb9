import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import type { AppServices } from '../app-services.js';

/**
 * `GET /metrics` (Prometheus' text format) and the hook that counts every answered request by
 * route pattern (never the raw URL: ids would make one series per model) and status.
 */
export const metricsRoutes = fp(async (app: FastifyInstance, { services }: { services: AppServices }) => {
  const metrics = services.metrics;
  if (!metrics) return;
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? '(unmatched)', reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get(
    '/metrics',
    {
      schema: {
        summary: 'Prometheus metrics: pulls, queues, workers, registry, HTTP, Redis',
        tags: ['ops'],
        produces: ['text/plain'],
        response: { 200: { type: 'string', description: 'Prometheus text exposition format 0.0.4' } },
      },
    },
    async (_req, reply) => reply.type(metrics.contentType).send(await metrics.render()),
  );
});
