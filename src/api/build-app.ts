import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { errorHandler } from './error-handler.js';
import { requestLog } from './request-log.js';
import type { AppServices } from './app-services.js';
import { healthRoutes } from './routes/health-routes.js';
import { modelRoutes } from './routes/model-routes.js';
import { openaiRoutes } from './routes/openai-routes.js';
import { pullRoutes } from './routes/pull-routes.js';
import { registerQueueDashboard } from './queue-dashboard.js';
import type { Queue } from 'bullmq';
import { registryRoutes } from './routes/registry-routes.js';
import { slotRoutes } from './routes/slot-routes.js';
import { catalogueRoutes } from './routes/catalogue-routes.js';
import { verifyRoutes } from './routes/verify-routes.js';
import { workerRoutes } from './routes/worker-routes.js';
import { dashboardRoutes } from './routes/dashboard-routes.js';
import { mirrorRoutes } from '../mirror/mirror-routes.js';
import { metricsRoutes } from './routes/metrics-routes.js';
import { LOOPBACK_GUARD, requestGuard, type RequestGuardOptions } from './request-guard.js';
import { requestBodies } from './request-bodies.js';
import { routeList } from './route-list.js';

export interface BuildAppOptions {
  services: AppServices;
  logger?: boolean | object;
  /** A ready pino logger (src/app/logger-options.ts); takes precedence over `logger`. */
  loggerInstance?: FastifyBaseLogger;
  /** Queues shown by the dashboard at /admin/queues; none: no dashboard. */
  dashboardQueues?: Queue[];
  /** The built web page. @defaultValue dist/web of this checkout */
  webRoot?: string;
  /** Let the dashboard's write actions run (`dashboard_writable`). */
  dashboardWritable?: boolean;
  /** Tokens, Host allow-list, CORS origins (see request-guard.ts). Default: loopback only, no token. */
  guard?: RequestGuardOptions;
  /** The Redis URL, named without its password in `redis.unavailable` answers. */
  redisUrl?: string;
}

/** The HTTP API. Built once per process; tests drive it with `app.inject()` or a real listen. */
export async function buildApp({ services, logger = false, loggerInstance, dashboardQueues, webRoot, dashboardWritable, guard = LOOPBACK_GUARD, redisUrl }: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    ...(loggerInstance ? { loggerInstance } : { logger }),
    // One line per request, at debug, from requestLog below instead of fastify's two at info.
    logController: new LogController({ disableRequestLogging: true }),
    // JSON bodies here are small coordinate objects; archives have their own streamed route.
    bodyLimit: 64 * 1024,
    // Ids may be 128 characters (more once percent-encoded); find-my-way's default of 100 answered 414 for valid ids.
    routerOptions: { maxParamLength: 512 },
    // Without this, Fastify's default validator coerces and strips; we want bad input refused.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, allErrors: false } },
  });
  await app.register(errorHandler, { redisUrl });
  // Before any route: their onRoute hooks must see every route, their onRequest hook guards all of them.
  await app.register(routeList);
  await app.register(requestBodies);
  await app.register(requestGuard, guard);
  await app.register(requestLog);
  await app.register(metricsRoutes, { services }); // early: its onResponse hook counts every route
  await app.register(healthRoutes, { services });
  await app.register(modelRoutes, { services });
  await app.register(openaiRoutes, { services });
  await app.register(pullRoutes, { services });
  if (dashboardQueues?.length) await registerQueueDashboard(app, dashboardQueues, { writable: dashboardWritable, redisUrl });
  await app.register(registryRoutes, { services });
  await app.register(slotRoutes, { services });
  await app.register(catalogueRoutes, { services });
  await app.register(verifyRoutes, { services });
  await app.register(workerRoutes, { services });
  // The web page at / (built from web/ into dist/web); its shell is public, its data is the API.
  await app.register(dashboardRoutes, { webRoot });
  if (services.mirror) await app.register(mirrorRoutes, { mirror: services.mirror });
  return app;
}
