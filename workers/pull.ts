/**
 * Worker entry point (`npm run worker`, or `ferry worker`): takes pull jobs from Redis.
 * Run as many as you like, on as many machines as share the Redis and the pull root.
 */
import { FerryContext } from '../src/app/create-context.js';
import { runWorker } from '../src/app/run-worker.js';
import { loadConfig } from '../src/config/load-config.js';
import { reportError } from '../src/cli/output.js';

let ctx: FerryContext | undefined;
try {
  ctx = new FerryContext(loadConfig());
  await runWorker(ctx);
} catch (err) {
  process.exitCode = reportError(err);
} finally {
  await ctx?.close();
}
