import { buildApp } from '../api/build-app.js';
import { resolveRedis } from '../queue/resolve-redis.js';
import { redactUrl } from '../util/redact-url.js';
import { assertSafeBind } from './assert-safe-bind.js';
import type { FerryContext } from './create-context.js';
import { createLogger } from './logger-options.js';
import { startWorkers } from './start-workers.js';
import { waitForSignal } from './wait-for-signal.js';

/** `ferry serve`: resolve Redis (starting one if needed), listen, and run until a signal. */
export async function runServer(ctx: FerryContext, opts: { withWorker: boolean }): Promise<void> {
  const { config } = ctx;
  const unauthenticated = assertSafeBind(config); // before anything starts: a refused start leaves nothing running
  const logger = createLogger(config);
  const redis = await resolveRedis(config.redisUrl, config.home);
  config.redisUrl = redis.url;
  if (redis.stop) ctx.onClose(redis.stop);
  const app = await buildApp({
    services: await ctx.apiServices(),
    dashboardQueues: await ctx.dashboardQueues(),
    dashboardWritable: config.dashboardWritable,
    guard: { tokens: config.apiTokens, readTokens: config.apiReadTokens, bindHost: config.host, allowedHosts: config.allowedHosts, corsOrigins: config.corsOrigins },
    redisUrl: redis.url,
    loggerInstance: logger,
  });
  ctx.onClose(() => app.close());
  if (unauthenticated) app.log.warn(unauthenticated);
  if (opts.withWorker) {
    const workers = await startWorkers(ctx, { log: (m) => logger.info(`worker: ${m}`) });
    ctx.onClose(() => workers.close());
  }
  await app.listen({ port: config.port, host: config.host, listenTextResolver: (base) => `listening on ${base} (dashboard ${base}/, queues ${base}/admin/queues)` });
  logger.info(`Redis ${redactUrl(redis.url)} (${describeSource(redis.source)}); ${opts.withWorker ? `one worker in this process, ${config.workerConcurrency} pulls at a time` : 'no worker here: run `ferry worker`'}; log_level ${config.logLevel}`);
  const signal = await waitForSignal();
  logger.info(`${signal}: shutting down; active pulls get up to ${config.shutdownGraceS} s (shutdown_grace_s) and keep their partial files; Ctrl-C again to quit now`);
}

function describeSource(source: 'env' | 'local' | 'child'): string {
  return { env: 'REDIS_URL / redis_url', local: 'found on 127.0.0.1:6379', child: 'started by Ferry, stopped on exit' }[source];
}
