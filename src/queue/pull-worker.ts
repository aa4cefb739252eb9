import { hostname } from 'node:os';
import { UnrecoverableError, type Job, type Worker } from 'bullmq';
import { startJobWorker } from './job-worker.js';
import { startJobFence } from './job-fence.js';
import { Redis } from 'ioredis';
import { FerryError, isFerryError } from '../errors/ferry-error.js';
import type { PullJobContext } from '../services/hf-pull.js';
import type { PullQueue } from './pull-queue.js';
import { QUEUE_NAMES } from './queue-names.js';
import type { PullJobData, PullProgress, PullResult } from './pull-status.js';

/** Codes that retrying cannot fix: the job fails at once instead of burning its attempts. */
const FINAL_CODES = new Set([
  'source.not_found',
  'source.gated',
  'source.unauthorized',
  'source.bad_listing',
  'source.flm_unavailable',
  'source.flm_failed',
  'pull.checksum_mismatch',
  'pull.size_mismatch',
  'pull.cancelled',
  'pull.disk_full',
  'model.insufficient_disk',
  'model.invalid_source',
  'model.invalid_id',
  'model.source_conflict',
  'model.path_conflict',
  'registry.corrupt',
]);

export interface PullWorkerOptions {
  redisUrl: string;
  prefix: string;
  pullQueue: PullQueue;
  concurrency: number;
  lockMs: number;
  /** How long SIGTERM waits for active pulls before aborting them (their partial files stay). */
  shutdownGraceMs?: number;
  /** Does the work; `source` in the job data picks Hugging Face or FLM. */
  run: (job: PullJobContext) => Promise<PullResult>;
  log?: (message: string) => void;
  /**
   * Called in the processor after a successful pull (so a chain survives an API restart and
   * runs at least once). A failure is logged and never fails the pull.
   */
  onCompleted?: (data: PullJobData, result: PullResult) => Promise<void>;
  /** Called once a pull has failed for good (no retry left) or was cancelled; errors are logged only. */
  onFailed?: (data: PullJobData, failure: PullFailure) => Promise<void>;
}

export interface PullFailure {
  code: string;
  message: string;
  cancelled: boolean;
}

export interface RunningPullWorker {
  worker: Worker<PullJobData, PullResult>;
  close(): Promise<void>;
}

/**
 * A BullMQ worker for the pull queue plus the listener that makes cancel work from any API
 * process: the API publishes the job id, and whichever worker holds that job aborts it.
 */
export async function startPullWorker(opts: PullWorkerOptions): Promise<RunningPullWorker> {
  const name = `${hostname()}:${process.pid}`;
  const log = opts.log ?? (() => undefined);
  const active = new Map<string, AbortController>();
  const subscriber = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  subscriber.on('error', (err) => log(`cancel listener: ${err.message}`));
  await subscriber.subscribe(opts.pullQueue.cancelChannel);
  subscriber.on('message', (_channel, jobId: string) => active.get(jobId)?.abort('cancel'));

  let shuttingDown = false;
  const running = startJobWorker<PullJobData, PullResult>({
    queueName: QUEUE_NAMES.pull,
    redisUrl: opts.redisUrl,
    prefix: opts.prefix,
    concurrency: opts.concurrency,
    lockMs: opts.lockMs,
    // Pulls resume, so a job whose worker died may be taken over several times.
    maxStalledCount: 5,
    shutdownGraceMs: opts.shutdownGraceMs,
    log,
    logFailures: false, // src/app/watch-pull-outcomes.ts tells failed from cancelled and retried

    process: async (job, token) => {
      const controller = new AbortController();
      active.set(job.id!, controller);
      const fence = startJobFence({
        extend: () => job.extendLock(token!, opts.lockMs),
        lockMs: opts.lockMs,
        onLost: (reason) => {
          log(`pull ${job.id}: ${reason}: stopping, and leaving the partial files to the job's current owner`);
          controller.abort('lost-lock');
        },
      });
      try {
        return await processJob(job, controller, opts, name, () => fence.prove());
      } finally {
        fence.stop();
        active.delete(job.id!);
      }
    },
    onCompleted: async (job, result) => opts.onCompleted?.(job.data, result),
    onFailed: async (job, err) => {
      if (shuttingDown) return; // the pull resumes on the next attempt
      const p = (typeof job.progress === 'object' ? job.progress : {}) as Partial<PullProgress>;
      await opts.onFailed?.(job.data, { code: p.error_code ?? 'pull.failed', message: p.error ?? err.message, cancelled: p.error_code === 'pull.cancelled' });
    },
    onGraceExpired: () => {
      shuttingDown = true;
      for (const c of active.values()) c.abort('shutdown');
    },
  });
  // BullMQ's own renewal failing (token mismatch, job gone) stops the pull at once, not just a log line.
  running.worker.on('lockRenewalFailed', (jobIds: string[]) => {
    for (const id of jobIds) active.get(id)?.abort('lost-lock');
  });

  return {
    worker: running.worker,
    async close() {
      await running.close();
      subscriber.disconnect();
    },
  };
}

async function processJob(
  job: Job<PullJobData, PullResult>,
  controller: AbortController,
  opts: PullWorkerOptions,
  name: string,
  proveOwnership: () => Promise<void>,
): Promise<PullResult> {
  const report = async (p: PullProgress) => {
    // A worker that lost the job never writes its status: the current owner does.
    if (controller.signal.reason === 'lost-lock') return;
    await job.updateProgress(p as unknown as object);
    // The broadcast can be missed (a reconnect); the marker cannot.
    if (!controller.signal.aborted && (await opts.pullQueue.isCancelRequested(job.id!))) controller.abort('cancel');
  };
  try {
    if (await opts.pullQueue.isCancelRequested(job.id!)) controller.abort('cancel');
    return await opts.run({ data: job.data, signal: controller.signal, report, log: (m) => void job.log(m).catch(() => undefined), workerName: name, proveOwnership });
  } catch (raw) {
    const reason = controller.signal.reason;
    if (reason === 'shutdown') throw new Error('the worker shut down; the pull resumes on the next attempt');
    if (reason === 'lost-lock' || (isFerryError(raw) && raw.code === 'pull.lost_ownership')) {
      // Nothing is written for a job this worker may no longer own; BullMQ's own move fails on the stale token.
      throw new Error('this worker lost the job; it stopped and left the partial files to the current owner');
    }
    const err = reason === 'cancel' ? new FerryError('pull.cancelled', 'the pull was cancelled') : raw;
    const code = isFerryError(err) ? err.code : 'pull.failed';
    const message = (err as Error)?.message ?? String(err);
    const finalState = code === 'pull.cancelled' ? 'cancelled' : 'failed';
    const last = (typeof job.progress === 'object' ? job.progress : {}) as Partial<PullProgress>;
    await job
      .updateProgress({ ...last, state: finalState, error: message, error_code: code, finished_at: Math.floor(Date.now() / 1000) } as object)
      .catch(() => undefined);
    if (FINAL_CODES.has(code)) throw new UnrecoverableError(message);
    throw err instanceof Error ? err : new Error(message);
  }
}
