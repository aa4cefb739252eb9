import { buildApp } from '../api/build-app.js';
import { resolveRedis } from '../queue/resolve-redis.js';
import type { FerryContext } from './create-context.js';
import { startWorkers } from './start-workers.js';
import { waitForSignal } from './wait-for-signal.js';

/** `ferry serve`: resolve Redis (starting one if needed), listen, and run until a signal. */
export async function runServer(ctx: FerryContext, opts: { withWorker: boolean }): Promise<void> {
  const redis = await resolveRedis(ctx.config.redisUrl, ctx.config.home);
  ctx.config.redisUrl = redis.url;
  if (redis.stop) ctx.onClose(redis.stop);
  const app = await buildApp({ services: await ctx.apiServices(), dashboardQueues: await ctx.dashboardQueues(), logger: { level: process.env.LOG_LEVEL ?? 'info' } });
  ctx.onClose(() => app.close());
  if (opts.withWorker) {
    const workers = await startWorkers(ctx);
    ctx.onClose(() => workers.close());
  }
  await app.listen({ port: ctx.config.port, host: ctx.config.host });
  const signal = await waitForSignal();
  app.log.info({ signal }, 'shutting down');
}
