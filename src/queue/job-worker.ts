import { UnrecoverableError, Worker, type Job } from 'bullmq';
import { hostname } from 'node:os';
import { Redis } from 'ioredis';

export interface JobWorkerOptions<D, R> {
  queueName: string;
  redisUrl: string;
  prefix: string;
  /**
   * Jobs this process runs at once.
   * @defaultValue 1
   */
  concurrency?: number;
  lockMs: number;
  /** The work. Must keep the event loop free (stream, never block) so the lock is renewed. */
  process: (job: Job<D, R>, token?: string) => Promise<R>;
  /** After a job succeeded, still inside the processor (at least once); errors are logged only. */
  onCompleted?: (job: Job<D, R>, result: R) => Promise<void>;
  /** After the last attempt of a job failed; errors are logged only. */
  onFailed?: (job: Job<D, R>, err: Error) => Promise<void>;
  log: (message: string) => void;
  /**
   * How long close() waits for active jobs.
   * @defaultValue 10000
   */
  shutdownGraceMs?: number;
  /**
   * How often a job whose worker died may be taken over.
   * @defaultValue 1 (BullMQ's)
   */
  maxStalledCount?: number;
  /**
   * Log every failed attempt as `<queue> <id> failed: ...`.
   * @defaultValue true (the pull worker says completed / failed / cancelled itself)
   */
  logFailures?: boolean;
  /** Called when close()'s grace period runs out with jobs still active (abort them here). */
  onGraceExpired?: () => void;
}

export interface RunningJobWorker<D = unknown, R = unknown> {
  worker: Worker<D, R>;
  close(): Promise<void>;
}

/** A BullMQ worker (pull, verify, warm) with the hooks that chain jobs and a graceful close. */
export function startJobWorker<D, R>(opts: JobWorkerOptions<D, R>): RunningJobWorker<D, R> {
  const connection = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  connection.on('error', (err) => opts.log(`${opts.queueName} worker connection: ${err.message}`));
  const worker = new Worker<D, R>(
    opts.queueName,
    async (job, token) => {
      try {
        const result = await opts.process(job, token);
        await opts.onCompleted?.(job, result).catch((err: Error) => opts.log(`${opts.queueName} ${job.id}: after-job hook failed: ${err.message}`));
        return result;
      } catch (err) {
        // Final when no attempt is left, or when retrying cannot help (UnrecoverableError).
        if (err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1)) {
          await opts.onFailed?.(job, err as Error).catch((e: Error) => opts.log(`${opts.queueName} ${job.id}: failure hook failed: ${e.message}`));
        }
        throw err;
      }
    },
    {
      connection,
      prefix: opts.prefix,
      // Shown by GET /api/workers (and bull-board): which process on which host holds a job.
      name: `${hostname()}:${process.pid}`,
      concurrency: opts.concurrency ?? 1,
      lockDuration: opts.lockMs,
      stalledInterval: opts.lockMs,
      ...(opts.maxStalledCount !== undefined ? { maxStalledCount: opts.maxStalledCount } : {}),
    },
  );
  worker.on('error', (err) => opts.log(`${opts.queueName} worker: ${err.message}`));
  if (opts.logFailures !== false) worker.on('failed', (job, err) => opts.log(`${opts.queueName} ${job?.id} failed: ${err.message}`));
  return {
    worker,
    async close() {
      const grace = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), opts.shutdownGraceMs ?? 10_000).unref());
      const closing = worker.close();
      if ((await Promise.race([closing, grace])) === 'timeout') {
        if (opts.onGraceExpired) {
          opts.onGraceExpired();
          await closing;
        } else {
          await worker.close(true).catch(() => undefined);
        }
      }
      connection.disconnect();
    },
  };
}
