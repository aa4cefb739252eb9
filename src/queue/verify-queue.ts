import { randomBytes } from 'node:crypto';
import { Queue, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { FerryError } from '../errors/ferry-error.js';
import { RETENTION_S } from './pull-queue.js';
import { encodeModelKey, QUEUE_NAMES } from './queue-names.js';
import type { VerifyJobData, VerifyProgress, VerifyResult, VerifyState, VerifyStatus } from './verify-status.js';

/**
 * The verify queue: one re-hash per model at a time (BullMQ deduplication on the model id,
 * like pulls), and a model -> latest job key so any API process answers its status.
 */
export class VerifyQueue {
  readonly queue: Queue<VerifyJobData, VerifyResult>;
  private readonly keyPrefix: string;

  constructor(
    private readonly redis: Redis,
    readonly prefix: string,
  ) {
    this.queue = new Queue(QUEUE_NAMES.verify, { connection: redis, prefix });
    this.queue.on('error', () => undefined);
    this.keyPrefix = `${prefix}:ferry`;
  }

  private latestKey(modelId: string): string {
    return `${this.keyPrefix}:verify-latest:${encodeModelKey(modelId)}`;
  }

  /**
   * A chained verify (slot swap) is never joined to a running plain one: the chain lives in
   * the job data, and a joined job would not carry it.
   */
  async enqueue(data: VerifyJobData): Promise<{ jobId: string; resumed: boolean }> {
    const proposed = randomBytes(8).toString('hex');
    const job = await this.queue.add('verify', data, {
      jobId: proposed,
      ...(data.chain ? {} : { deduplication: { id: `verify@${encodeModelKey(data.model_id)}` } }),
      attempts: 2,
      backoff: { type: 'fixed', delay: 1000 },
      removeOnComplete: { age: RETENTION_S },
      removeOnFail: { age: RETENTION_S },
    });
    const jobId = job.id!;
    if (jobId === proposed) await this.redis.set(this.latestKey(data.model_id), jobId, 'EX', RETENTION_S * 2);
    return { jobId, resumed: jobId !== proposed };
  }

  async status(modelId: string): Promise<VerifyStatus> {
    const jobId = await this.redis.get(this.latestKey(modelId));
    const job = jobId ? await this.queue.getJob(jobId) : undefined;
    if (!job) throw new FerryError('model.verify_job_not_found', `no verify of "${modelId}" in the last 24 hours`);
    return toStatus(job, await job.getState());
  }

  async statusOfJob(jobId: string): Promise<VerifyStatus | undefined> {
    const job = await this.queue.getJob(jobId);
    return job ? toStatus(job, await job.getState()) : undefined;
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}

function toStatus(job: Job<VerifyJobData, VerifyResult>, jobState: string): VerifyStatus {
  const p = (typeof job.progress === 'object' ? job.progress : {}) as Partial<VerifyProgress>;
  const r = job.returnvalue as VerifyResult | null | undefined;
  const state: VerifyState = jobState === 'completed' && r ? r.state : jobState === 'failed' ? 'failed' : jobState === 'active' ? 'running' : 'queued';
  return {
    id: job.id!,
    model_id: job.data.model_id,
    state,
    bytes_total: r ? r.bytes : p.bytes_total ?? 0,
    bytes_done: r ? r.bytes : p.bytes_done ?? 0,
    files: r?.files ?? [],
    verified_at: r?.verified_at ?? null,
    corrupt: r?.corrupt ?? null,
    reason: r?.reason ?? null,
    error: state === 'failed' ? job.failedReason ?? 'verify failed' : null,
    started_at: job.processedOn ? Math.floor(job.processedOn / 1000) : null,
    finished_at: job.finishedOn ? Math.floor(job.finishedOn / 1000) : null,
  };
}
