import { buildApp } from '../api/build-app.js';
import { apiLoggerOptions } from '../api/logger-options.js';
import { resolveRedis } from '../queue/resolve-redis.js';
import { assertSafeBind } from './assert-safe-bind.js';
import type { FerryContext } from './create-context.js';
import { startWorkers } from './start-workers.js';
import { waitForSignal } from './wait-for-signal.js';

/** `ferry serve`: resolve Redis (starting one if needed), listen, and run until a signal. */
export async function runServer(ctx: FerryContext, opts: { withWorker: boolean }): Promise<void> {
  const { config } = ctx;
  const unauthenticated = assertSafeBind(config); // before anything starts: a refused start leaves nothing running
  const redis = await resolveRedis(config.redisUrl, config.home);
  config.redisUrl = redis.url;
  if (redis.stop) ctx.onClose(redis.stop);
  const app = await buildApp({
    services: await ctx.apiServices(),
    dashboardQueues: await ctx.dashboardQueues(),
    dashboardWritable: config.dashboardWritable,
    guard: { tokens: config.apiTokens, readTokens: config.apiReadTokens, bindHost: config.host, allowedHosts: config.allowedHosts, corsOrigins: config.corsOrigins },
    redisUrl: redis.url,
    logger: apiLoggerOptions({ level: process.env.LOG_LEVEL ?? 'info' }),
  });
  ctx.onClose(() => app.close());
  if (unauthenticated) app.log.warn(unauthenticated);
  if (opts.withWorker) {
    const workers = await startWorkers(ctx);
    ctx.onClose(() => workers.close());
  }
  await app.listen({ port: config.port, host: config.host });
  const signal = await waitForSignal();
  app.log.info({ signal }, 'shutting down');
}
