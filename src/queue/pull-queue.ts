import { randomBytes } from 'node:crypto';
import { Job, Queue, type JobState } from 'bullmq';
import type { Redis } from 'ioredis';
import { FerryError } from '../errors/ferry-error.js';
import { encodeModelKey, QUEUE_NAMES } from './queue-names.js';
import type { PullJobData, PullProgress, PullResult, PullState, PullStatus } from './pull-status.js';

/** Finished pulls answer /status for a day (hal0's retention), then age out of Redis. */
export const RETENTION_S = 24 * 60 * 60;

export interface EnqueueResult {
  jobId: string;
  /** True when a pull of this model was already queued or running: its job is returned. */
  resumed: boolean;
}

/**
 * The pull queue and the small keys around it: model -> latest job, cancel markers and the
 * cancel broadcast. The only code that knows how pull state is laid out in Redis.
 */
export class PullQueue {
  readonly queue: Queue<PullJobData, PullResult>;
  private readonly keyPrefix: string;

  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.queue = new Queue(QUEUE_NAMES.pull, { connection: redis, prefix });
    this.queue.on('error', () => undefined);
    this.keyPrefix = `${prefix}:ferry`;
  }

  get cancelChannel(): string {
    return `${this.keyPrefix}:cancel`;
  }

  cancelKey(jobId: string): string {
    return `${this.keyPrefix}:cancel:${jobId}`;
  }

  private latestKey(modelId: string): string {
    return `${this.keyPrefix}:pull-latest:${encodeModelKey(modelId)}`;
  }

  private tombstoneKey(jobId: string): string {
    return `${this.keyPrefix}:pull-tombstone:${jobId}`;
  }

  /** One pull per model across every API process and worker: BullMQ deduplication on the model id. */
  async enqueue(data: PullJobData): Promise<EnqueueResult> {
    const proposed = randomBytes(8).toString('hex'); // hal0's 16-hex job ids
    const job = await this.queue.add('pull', data, {
      jobId: proposed,
      deduplication: { id: `pull@${encodeModelKey(data.model_id)}` },
      attempts: 10,
      backoff: { type: 'exponential', delay: 2000, jitter: 0.5 },
      removeOnComplete: { age: RETENTION_S },
      removeOnFail: { age: RETENTION_S },
    });
    const jobId = job.id!;
    if (jobId === proposed) await this.redis.set(this.latestKey(data.model_id), jobId, 'EX', RETENTION_S * 2);
    return { jobId, resumed: jobId !== proposed };
  }

  async latestJobId(modelId: string): Promise<string | undefined> {
    return (await this.redis.get(this.latestKey(modelId))) ?? undefined;
  }

  async getJob(jobId: string): Promise<Job<PullJobData, PullResult> | undefined> {
    return (await this.queue.getJob(jobId)) ?? undefined;
  }

  /** The latest pull of a model, read from Redis so every API process answers the same. */
  async status(modelId: string): Promise<PullStatus> {
    const jobId = await this.latestJobId(modelId);
    if (!jobId) throw notFound(modelId);
    const status = await this.statusOfJob(jobId);
    if (!status) throw notFound(modelId);
    return status;
  }

  async statusOfJob(jobId: string): Promise<PullStatus | undefined> {
    const job = await this.getJob(jobId);
    if (!job) {
      const tomb = await this.redis.get(this.tombstoneKey(jobId));
      return tomb ? (JSON.parse(tomb) as PullStatus) : undefined;
    }
    const state = await job.getState();
    const cancelRequested = (await this.redis.exists(this.cancelKey(jobId))) === 1;
    return toStatus(job, state, cancelRequested);
  }

  /** Recent and active pulls, newest first. */
  async list(limit = 100): Promise<PullStatus[]> {
    const jobs = await this.queue.getJobs(['active', 'waiting', 'delayed', 'prioritized', 'completed', 'failed'], 0, limit - 1);
    const statuses = await Promise.all(
      jobs.filter(Boolean).map(async (job) => toStatus(job, await job.getState(), (await this.redis.exists(this.cancelKey(job.id!))) === 1)),
    );
    return statuses.sort((a, b) => (b.started_at ?? Infinity) - (a.started_at ?? Infinity));
  }

  /**
   * Cancel from any API process: a waiting job is removed; an active one is told through a
   * marker key (checked by the worker at every progress tick) and a broadcast (immediate).
   */
  async cancel(modelId: string): Promise<PullStatus> {
    const jobId = await this.latestJobId(modelId);
    if (!jobId) throw notFound(modelId);
    const job = await this.getJob(jobId);
    if (!job) {
      const status = await this.statusOfJob(jobId);
      if (!status) throw notFound(modelId);
      return status;
    }
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') return toStatus(job, state, false);
    await this.redis.set(this.cancelKey(jobId), '1', 'EX', RETENTION_S);
    if (state !== 'active' && (await removeUnlessLocked(job))) {
      // The tombstone answers /status from now on; the dedup key goes so a new pull can start.
      const status: PullStatus = { ...toStatus(job, state, true), state: 'cancelled', finished_at: nowS() };
      await this.redis.set(this.tombstoneKey(jobId), JSON.stringify(status), 'EX', RETENTION_S);
      await this.queue.removeDeduplicationKey(`pull@${encodeModelKey(modelId)}`);
      return status;
    }
    await this.redis.publish(this.cancelChannel, jobId);
    return this.waitUntilFinished(jobId, 2000);
  }

  private async waitUntilFinished(jobId: string, timeoutMs: number): Promise<PullStatus> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = await this.statusOfJob(jobId);
      if (!status) throw new FerryError('model.pull_job_not_found', `pull job ${jobId} disappeared`);
      if (['completed', 'failed', 'cancelled'].includes(status.state) || Date.now() > deadline) return status;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Worker connections on this queue, by BullMQ's client names (CLIENT LIST). */
  workerCount(): Promise<number> {
    return this.queue.getWorkersCount();
  }

  async isCancelRequested(jobId: string): Promise<boolean> {
    return (await this.redis.exists(this.cancelKey(jobId))) === 1;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

/** Removes a job that is not running; false when it became active meanwhile (its lock forbids removal). */
async function removeUnlessLocked(job: Job<PullJobData, PullResult>): Promise<boolean> {
  try {
    await job.remove();
    return true;
  } catch {
    return false;
  }
}

function toStatus(job: Job<PullJobData, PullResult>, state: JobState | 'unknown', cancelRequested: boolean): PullStatus {
  const p = (typeof job.progress === 'object' ? job.progress : {}) as Partial<PullProgress>;
  const finished = state === 'completed' || state === 'failed';
  const pullState = mapState(state, p, cancelRequested);
  const startedAt = p.started_at ?? (job.processedOn ? Math.floor(job.processedOn / 1000) : null);
  const finishedAt = finished ? p.finished_at ?? (job.finishedOn ? Math.floor(job.finishedOn / 1000) : nowS()) : null;
  const elapsed = startedAt ? Math.max(0, (finishedAt ?? nowS()) - startedAt) : 0;
  const total = p.bytes_total ?? 0;
  const done = p.bytes_downloaded ?? 0;
  const rate = pullState === 'running' ? p.throughput_bps ?? 0 : finished && elapsed > 0 ? Math.round(done / elapsed) : 0;
  return {
    id: job.id!,
    model_id: job.data.model_id,
    state: pullState,
    source: job.data.source,
    hf_repo: job.data.hf_repo,
    hf_file: job.data.hf_files?.join(','),
    revision: p.revision ?? job.data.revision,
    bytes_total: total,
    bytes_downloaded: done,
    throughput_bps: rate,
    elapsed_s: elapsed,
    eta_s: pullState === 'completed' ? 0 : pullState === 'running' && rate > 0 && total > 0 ? Math.ceil((total - done) / rate) : null,
    started_at: startedAt,
    finished_at: finishedAt,
    error: pullState === 'failed' || pullState === 'cancelled' ? p.error ?? job.failedReason ?? null : null,
    error_code: pullState === 'failed' || pullState === 'cancelled' ? p.error_code ?? (job.failedReason ? 'pull.failed' : null) : null,
    sha256: job.returnvalue?.sha256 ?? p.sha256 ?? null,
    path: job.returnvalue?.path ?? p.path ?? null,
    files: p.files ?? [],
    attempts: job.attemptsMade,
    connections: pullState === 'running' ? p.connections ?? 0 : 0,
  };
}

function mapState(state: JobState | 'unknown', p: Partial<PullProgress>, cancelRequested: boolean): PullState {
  if (state === 'completed') return 'completed';
  if (state === 'failed') return p.state === 'cancelled' || p.error_code === 'pull.cancelled' ? 'cancelled' : 'failed';
  if (state === 'active') return p.state === 'verifying' ? 'verifying' : 'running';
  if (cancelRequested) return 'cancelled';
  return 'queued';
}

function notFound(modelId: string): FerryError {
  return new FerryError('model.pull_job_not_found', `no pull of "${modelId}" in the last 24 hours`);
}

function nowS(): number {
  return Math.floor(Date.now() / 1000);
}
