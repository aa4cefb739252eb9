import { resolveRedis } from '../queue/resolve-redis.js';
import type { FerryContext } from './create-context.js';
import { startWorkers } from './start-workers.js';
import { waitForSignal } from './wait-for-signal.js';
import { redactUrl } from '../util/redact-url.js';

/** `ferry worker` / `npm run worker`: a worker process; any number may run on any machine. */
export async function runWorker(ctx: FerryContext): Promise<void> {
  const redis = await resolveRedis(ctx.config.redisUrl, ctx.config.home);
  ctx.config.redisUrl = redis.url;
  if (redis.stop) ctx.onClose(redis.stop);
  const workers = await startWorkers(ctx);
  ctx.onClose(() => workers.close());
  process.stderr.write(`ferry worker ${process.pid} taking jobs from ${redactUrl(redis.url)}\n`);
  await waitForSignal();
}

export { redactUrl };
