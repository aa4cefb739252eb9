import type { Worker } from 'bullmq';
import type { FerryContext } from './create-context.js';
import { PullMetricsStore } from '../queue/pull-metrics-store.js';
import { QUEUE_NAMES } from '../queue/queue-names.js';
import { redactUrl } from '../util/redact-url.js';
import { watchPullOutcomes } from './watch-pull-outcomes.js';

export interface RunningWorkers {
  close(): Promise<void>;
}

/** Starts this process's workers: pull, verify and warm. */
export async function startWorkers(ctx: FerryContext, opts: { log?: (m: string) => void } = {}): Promise<RunningWorkers> {
  const [{ startPullWorker }, { runHfPull, cleanStalePartials }, { runFlmPull }, { HfClient }, { TransferLimits }, { runMirrorFetch }, { MirrorStore }] = await Promise.all([
    import('../queue/pull-worker.js'),
    import('../services/hf-pull.js'),
    import('../services/flm-pull.js'),
    import('../sources/huggingface/hf-client.js'),
    import('../sources/http/transfer-limits.js'),
    import('../mirror/mirror-fetch.js'),
    import('../mirror/mirror-store.js'),
  ]);
  const { PooledHfClient } = await import('../sources/huggingface/endpoint-pool.js');
  const flm = await ctx.flm();
  const { config } = ctx;
  const log = opts.log ?? ((m: string) => process.stderr.write(`[ferry worker] ${m}\n`));
  // The token lives only here, in the worker's memory; job data and status never carry it.
  const client = config.hfEndpoints.length > 1 ? new PooledHfClient(config.hfEndpoints, { token: config.hfToken }) : new HfClient({ endpoint: config.hfEndpoint, token: config.hfToken });
  const pullQueue = await ctx.pullQueueStore();
  // One set of limits for every pull this worker runs.
  const limits = new TransferLimits({ maxConnectionsPerHost: config.maxConnectionsPerHost, maxBandwidthBps: config.maxBandwidthBps });
  // Verify and warm (issue #4); their hooks continue a slot swap after its pull.
  const { startSlotWorkers } = await import('./start-slot-workers.js');
  const slotWorkers = await startSlotWorkers(ctx, log);
  const pull = await startPullWorker({
    ...slotWorkers.pullHooks,
    redisUrl: config.redisUrl!,
    prefix: config.queuePrefix,
    pullQueue,
    concurrency: config.workerConcurrency,
    lockMs: config.jobLockMs,
    shutdownGraceMs: config.shutdownGraceS * 1000,
    log,
    run: (job) =>
      job.data.source === 'flm'
        ? runFlmPull({ flm, registry: ctx.registry }, job)
        : job.data.source === 'mirror'
          ? runMirrorFetch({ client, store: new MirrorStore(config.modelRoot), pullRoot: config.pullRoot, stallTimeoutMs: config.stallTimeoutS * 1000, retryBaseMs: config.retryBaseMs, directIo: config.directIo, threadMinBytes: config.downloadThreadMinBytes }, job)
          : runHfPull(
        {
          client,
          registry: ctx.registry,
          pullRoot: config.pullRoot,
          diskMarginBytes: config.diskMarginBytes,
          stallTimeoutMs: config.stallTimeoutS * 1000,
          retryBaseMs: config.retryBaseMs,
          directIo: config.directIo,
          threadMinBytes: config.downloadThreadMinBytes,
          parallel: { minBytes: config.parallelMinBytes, connections: config.pullConnections, memoryBytes: config.pullMemoryBytes },
          limits,
          jobLockMs: config.jobLockMs,
        },
        job,
      ),
  });
  const metrics = new PullMetricsStore(ctx.redis, config.queuePrefix);
  watchPullOutcomes(pull.worker, { log, metrics });
  const byQueue: Record<string, Worker> = { [QUEUE_NAMES.pull]: pull.worker as unknown as Worker, ...slotWorkers.workers };
  for (const [queue, worker] of Object.entries(byQueue)) worker.on('stalled', () => void metrics.recordStalled(queue).catch(() => undefined));
  log(`worker started (pid ${process.pid}), taking jobs from ${redactUrl(config.redisUrl!)}: pull, verify and warm, ${config.workerConcurrency} pulls at a time`);
  const sweep = async () => {
    for (const path of await cleanStalePartials(config.pullRoot)) log(`removed stale partial ${path}`);
  };
  await sweep().catch(() => undefined);
  const timer = setInterval(() => void sweep().catch(() => undefined), 60 * 60 * 1000);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      // Together: a SIGTERM's grace period is spent once, not once per queue.
      await Promise.all([pull.close(), slotWorkers.close()]);
    },
  };
}
