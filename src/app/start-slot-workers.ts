import type { Worker } from 'bullmq';
import type { FerryContext } from './create-context.js';
import { startJobWorker } from '../queue/job-worker.js';
import { QUEUE_NAMES } from '../queue/queue-names.js';
import type { VerifyJobData, VerifyResult } from '../queue/verify-status.js';
import type { WarmJobData, WarmResult } from '../queue/warm-queue.js';
import type { PullWorkerOptions } from '../queue/pull-worker.js';
import { SlotChain } from '../services/slot-chain.js';
import { SlotWarmer } from '../services/slot-warmer.js';
import { verifyModel } from '../services/verify-model.js';

export interface RunningSlotWorkers {
  /** Hooks for the pull worker: a swap's pull continues with verify and warm. */
  pullHooks: Pick<PullWorkerOptions, 'onCompleted' | 'onFailed'>;
  /** The BullMQ workers by queue name (for the stalled-job counters). */
  workers: Record<string, Worker>;
  close(): Promise<void>;
}

/**
 * The verify and warm workers of this process. Backends started by warm jobs belong to this
 * process: close() stops them (their slots go offline) after the workers stop taking jobs.
 */
export async function startSlotWorkers(ctx: FerryContext, log: (m: string) => void): Promise<RunningSlotWorkers> {
  const { config } = ctx;
  const { verifyQueue, warmQueue } = await ctx.slotJobServices();
  const chain = new SlotChain({ slotsDir: config.slotsDir, states: ctx.slots.states, verifyQueue, warmQueue, log });
  const warmer = new SlotWarmer({ slotsDir: config.slotsDir, states: ctx.slots.states, registry: ctx.registry, backends: config.backends, log });
  const base = { redisUrl: config.redisUrl!, prefix: config.queuePrefix, lockMs: config.jobLockMs, shutdownGraceMs: config.shutdownGraceS * 1000, log };

  const verify = startJobWorker<VerifyJobData, VerifyResult>({
    ...base,
    queueName: QUEUE_NAMES.verify,
    concurrency: config.workerConcurrency,
    process: (job) => verifyModel(ctx.registry, { modelId: job.data.model_id, report: (p) => job.updateProgress(p as unknown as object) }),
    onCompleted: (job, result) => chain.onVerifyFinished(job.data, result),
    onFailed: (job, err) => chain.onVerifyFailed(job.data, err),
  });
  const warm = startJobWorker<WarmJobData, WarmResult>({
    ...base,
    queueName: QUEUE_NAMES.warm,
    // Loads on different slots may overlap; one slot's jobs are serialised by the warmer's lock.
    concurrency: Math.max(2, config.workerConcurrency),
    process: (job) => warmer.warm(job.data),
  });
  return {
    workers: { [QUEUE_NAMES.verify]: verify.worker as Worker, [QUEUE_NAMES.warm]: warm.worker as Worker },
    pullHooks: {
      onCompleted: (data, result) => chain.onPullCompleted(data, result),
      onFailed: (data, failure) => chain.onPullFailed(data, failure),
    },
    async close() {
      await Promise.all([verify.close(), warm.close()]);
      await warmer.close();
    },
  };
}
