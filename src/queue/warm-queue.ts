import { randomBytes } from 'node:crypto';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { RETENTION_S } from './pull-queue.js';
import { QUEUE_NAMES } from './queue-names.js';

export interface WarmJobData {
  slot: string;
  /**
   * Set by a swap chain: the worker writes it into the slot file ([model] default) first, so
   * the file changes only once the model is pulled and verified. Unset: the file's model.
   */
  model?: string;
  requested_at: number;
}

export interface WarmResult {
  slot: string;
  state: string;
  model_id: string | null;
  pid?: number;
  /** The slot already served this model with a live backend: nothing was restarted. */
  unchanged?: boolean;
}

/**
 * The warm queue. Not deduplicated: a second assign while a warm job runs must not be
 * swallowed by it. Jobs of one slot are serialised by a lock in the worker instead, and each
 * loads what the slot file says when it runs.
 */
export class WarmQueue {
  readonly queue: Queue<WarmJobData, WarmResult>;

  constructor(redis: Redis, readonly prefix: string) {
    this.queue = new Queue(QUEUE_NAMES.warm, { connection: redis, prefix });
    this.queue.on('error', () => undefined);
  }

  async enqueue(data: WarmJobData): Promise<string> {
    const job = await this.queue.add('warm', data, {
      jobId: randomBytes(8).toString('hex'),
      // A failed load is reported in the slot's state; retrying a backend that crashed only repeats it.
      attempts: 1,
      removeOnComplete: { age: RETENTION_S },
      removeOnFail: { age: RETENTION_S },
    });
    return job.id!;
  }

  /** BullMQ's state of a warm job ('completed', 'failed', 'active', ...; 'unknown' once removed). */
  async jobState(jobId: string): Promise<string> {
    const job = await this.queue.getJob(jobId);
    return job ? job.getState() : 'unknown';
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
