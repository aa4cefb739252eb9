import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppServices } from '../app-services.js';

const Check = Type.Object({ ok: Type.Boolean(), error: Type.Optional(Type.String()), models: Type.Optional(Type.Integer()) });
const Health = Type.Object({ ok: Type.Boolean(), redis: Check, registry: Check });

/** 200 when Redis answers and the registry parses, 503 otherwise, with which part failed. */
export async function healthRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  // Public (no token): load balancers and compose health checks probe it. It says only ok/not ok and why.
  app.get('/healthz', { config: { public: true }, schema: { response: { 200: Health, 503: Health } } }, async (_req, reply) => {
    const report = await services.health.check();
    return reply.code(report.ok ? 200 : 503).send(report);
  });
}
