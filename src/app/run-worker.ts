import { resolveRedis } from '../queue/resolve-redis.js';
import type { FerryContext } from './create-context.js';
import { createLogger } from './logger-options.js';
import { startWorkers } from './start-workers.js';
import { waitForSignal } from './wait-for-signal.js';
import { redactUrl } from '../util/redact-url.js';

/** `ferry worker` / `npm run worker`: a worker process; any number may run on any machine. */
export async function runWorker(ctx: FerryContext): Promise<void> {
  const logger = createLogger(ctx.config);
  const redis = await resolveRedis(ctx.config.redisUrl, ctx.config.home);
  ctx.config.redisUrl = redis.url;
  if (redis.stop) ctx.onClose(redis.stop);
  const workers = await startWorkers(ctx, { log: (m) => logger.info(m) });
  ctx.onClose(() => workers.close());
  const signal = await waitForSignal();
  logger.info(`${signal}: stopping; active pulls get up to ${ctx.config.shutdownGraceS} s (shutdown_grace_s) and keep their partial files; Ctrl-C again to quit now`);
}

export { redactUrl };
