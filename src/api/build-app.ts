import Fastify, { type FastifyInstance } from 'fastify';
import { errorHandler } from './error-handler.js';
import type { AppServices } from './app-services.js';
import { healthRoutes } from './routes/health-routes.js';
import { modelRoutes } from './routes/model-routes.js';
import { openaiRoutes } from './routes/openai-routes.js';

export interface BuildAppOptions {
  services: AppServices;
  logger?: boolean | object;
}

/** The HTTP API. Built once per process; tests drive it with `app.inject()` or a real listen. */
export async function buildApp({ services, logger = false }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    logger,
    // JSON bodies here are small coordinate objects; archives have their own streamed route.
    bodyLimit: 64 * 1024,
    // Without this, Fastify's default validator coerces and strips; we want bad input refused.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  await app.register(errorHandler);
  await app.register(healthRoutes, { services });
  await app.register(modelRoutes, { services });
  await app.register(openaiRoutes, { services });
  return app;
}
