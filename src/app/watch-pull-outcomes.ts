import type { Job, Worker } from 'bullmq';
import type { PullJobData, PullProgress, PullResult } from '../queue/pull-status.js';
import type { PullMetricsStore, PullOutcome } from '../queue/pull-metrics-store.js';

/**
 * How a pull ended, said once per pull: completed / failed / cancelled with its id, model,
 * bytes and seconds (a failed attempt that will be retried says so instead), and counted in
 * the Redis metrics that /metrics reads.
 */
export function watchPullOutcomes(worker: Worker<PullJobData, PullResult>, opts: { log: (m: string) => void; metrics?: PullMetricsStore }): void {
  const record = (outcome: PullOutcome, bytes: number, seconds: number) =>
    void opts.metrics?.recordOutcome(outcome, bytes, seconds).catch((err: Error) => opts.log(`pull metrics: ${err.message}`));

  worker.on('completed', (job, result) => {
    const seconds = secondsOf(job);
    opts.log(`pull ${job.id} (${job.data.model_id}) completed: ${result?.bytes ?? progressOf(job).bytes_downloaded ?? 0} bytes in ${seconds.toFixed(1)} s`);
    record('completed', result?.bytes ?? 0, seconds);
  });
  worker.on('failed', (job, err) => {
    if (!job) return;
    const p = progressOf(job);
    const seconds = secondsOf(job);
    const bytes = p.bytes_downloaded ?? 0;
    const cancelled = p.error_code === 'pull.cancelled';
    const final = cancelled || err.name === 'UnrecoverableError' || job.attemptsMade >= (job.opts.attempts ?? 1);
    if (!final) {
      opts.log(`pull ${job.id} (${job.data.model_id}) attempt ${job.attemptsMade} of ${job.opts.attempts ?? 1} failed, will resume: ${err.message}`);
      return;
    }
    const outcome: PullOutcome = cancelled ? 'cancelled' : 'failed';
    const why = cancelled ? '' : `: ${p.error_code ?? 'pull.failed'}: ${p.error ?? err.message}`;
    opts.log(`pull ${job.id} (${job.data.model_id}) ${outcome} after ${bytes} bytes in ${seconds.toFixed(1)} s${why}`);
    record(outcome, bytes, seconds);
  });
}

function progressOf(job: Job<PullJobData, PullResult>): Partial<PullProgress> {
  return (typeof job.progress === 'object' ? job.progress : {}) as Partial<PullProgress>;
}

/** From the pull's first start (kept in its progress across attempts) to now. */
function secondsOf(job: Job<PullJobData, PullResult>): number {
  const startedMs = (progressOf(job).started_at ?? 0) * 1000 || job.processedOn || Date.now();
  return Math.max(0, ((job.finishedOn ?? Date.now()) - startedMs) / 1000);
}
