import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { PullRequestBody } from '../../services/pull-service.js';
import type { AppServices } from '../app-services.js';
import { errorResponses, ModelIdParams } from '../schemas.js';
import { PullBodySchema, PullStartedSchema, PullStatusSchema } from '../schemas-pull.js';

type IdParams = { Params: { id: string } };

/** Pulls over HTTP. `:id` may be a registry id, an FLM tag or an URL-encoded `hf.co/org/repo:QUANT`. */
export async function pullRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.post<IdParams & { Body: PullRequestBody | null }>(
    '/api/models/:id/pull',
    { schema: { params: ModelIdParams, body: PullBodySchema, response: { 200: PullStartedSchema, 202: PullStartedSchema, ...errorResponses } } },
    async (req, reply) => {
      const { httpStatus, ...answer } = await services.pulls.start(req.params.id, req.body ?? {});
      return reply.code(httpStatus).send(answer);
    },
  );

  app.get<IdParams>('/api/models/:id/pull/status', { schema: { params: ModelIdParams, response: { 200: PullStatusSchema, ...errorResponses } } }, async (req) =>
    services.pulls.status(req.params.id),
  );

  app.post<IdParams>('/api/models/:id/pull/cancel', { schema: { params: ModelIdParams, response: { 200: PullStatusSchema, ...errorResponses } } }, async (req) =>
    services.pulls.cancel(req.params.id),
  );

  app.get('/api/pulls', { schema: { response: { 200: Type.Object({ pulls: Type.Array(PullStatusSchema) }), ...errorResponses } } }, async () => ({
    pulls: await services.pulls.list(),
  }));

  // Server-Sent Events: the status object at each change and at least every 5 s, until the pull ends.
  app.get<IdParams>('/api/models/:id/pull/stream', { schema: { params: ModelIdParams, response: errorResponses } }, async (req, reply) => {
    await services.pulls.status(req.params.id); // 404 / 400 as JSON before the stream starts
    const controller = new AbortController();
    req.raw.on('close', () => controller.abort());
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    try {
      await services.pulls.watch(req.params.id, (status) => reply.raw.write(`event: status\ndata: ${JSON.stringify(status)}\n\n`), controller.signal);
      reply.raw.write('event: end\ndata: {}\n\n');
    } catch (err) {
      reply.raw.write(`event: error\ndata: ${JSON.stringify({ message: (err as Error).message })}\n\n`);
    } finally {
      reply.raw.end();
    }
  });
}
