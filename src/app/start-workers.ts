import type { FerryContext } from './create-context.js';

export interface RunningWorkers {
  close(): Promise<void>;
}

/** Starts this process's workers: pull, verify and warm. */
export async function startWorkers(ctx: FerryContext, opts: { log?: (m: string) => void } = {}): Promise<RunningWorkers> {
  const [{ startPullWorker }, { runHfPull, cleanStalePartials }, { runFlmPull }, { HfClient }] = await Promise.all([
    import('../queue/pull-worker.js'),
    import('../services/hf-pull.js'),
    import('../services/flm-pull.js'),
    import('../sources/huggingface/hf-client.js'),
  ]);
  const flm = await ctx.flm();
  const { config } = ctx;
  const log = opts.log ?? ((m: string) => process.stderr.write(`[ferry worker] ${m}\n`));
  // The token lives only here, in the worker's memory; job data and status never carry it.
  const client = new HfClient({ endpoint: config.hfEndpoint, token: config.hfToken });
  const pullQueue = await ctx.pullQueueStore();
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
          jobLockMs: config.jobLockMs,
        },
        job,
      ),
  });
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
