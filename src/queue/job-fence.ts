import { FerryError } from '../errors/ferry-error.js';

export interface JobFenceOptions {
  /** Extends the job's lock with this worker's token: BullMQ's `job.extendLock(token, lockMs)`; 1 when it is still ours. */
  extend: () => Promise<number>;
  /** The job lock's duration (config `job_lock_ms`); BullMQ renews it every half of that. */
  lockMs: number;
  /** Called once, when ownership is lost: abort the work here. */
  onLost: (reason: string) => void;
}

export interface JobFence {
  /** Throws `pull.lost_ownership` unless the lock is provably still ours right now (it is extended as the proof). */
  prove(): Promise<void>;
  readonly lost: boolean;
  stop(): void;
}

/**
 * Fencing on BullMQ's lock token. BullMQ renews a job's lock in the background and only logs
 * when that fails, so a worker cut off from Redis (or whose job was taken over, or wiped) would
 * keep writing. This renews the lock itself every quarter of its duration and calls `onLost`
 * when the token no longer matches (the job moved on or vanished: answer 0) or when no renewal
 * has succeeded for half the lock's duration (Redis unreachable): that is within one of
 * BullMQ's renewal periods, and before the lock can expire for another worker to take over.
 */
export function startJobFence(opts: JobFenceOptions): JobFence {
  const period = Math.max(100, Math.floor(opts.lockMs / 4));
  const limit = opts.lockMs / 2;
  let lastOk = Date.now();
  let lost = false;
  let inFlight = false;
  const lose = (reason: string) => {
    if (lost) return;
    lost = true;
    clearInterval(timer);
    opts.onLost(reason);
  };
  const attempt = async (): Promise<number | 'timeout'> => {
    let timeout: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([opts.extend(), new Promise<'timeout'>((r) => (timeout = setTimeout(() => r('timeout'), period)))]);
    } finally {
      clearTimeout(timeout);
    }
  };
  const tick = async () => {
    if (lost) return;
    if (Date.now() - lastOk >= limit) return lose(`no lock renewal for ${Date.now() - lastOk} ms (Redis unreachable?)`);
    if (inFlight) return;
    inFlight = true;
    try {
      const answer = await attempt().catch(() => 'error' as const);
      if (answer === 1) lastOk = Date.now();
      else if (answer === 0) lose('the job lock is no longer ours (taken over, or the job is gone)');
      else if (Date.now() - lastOk >= limit) lose(`no lock renewal for ${Date.now() - lastOk} ms (Redis unreachable?)`);
    } finally {
      inFlight = false;
    }
  };
  const timer = setInterval(() => void tick(), period);
  timer.unref();
  return {
    get lost() {
      return lost;
    },
    async prove() {
      const answer = lost ? 0 : await attempt().catch(() => 'error' as const);
      if (answer === 1) {
        lastOk = Date.now();
        return;
      }
      if (answer === 0) lose('the job lock is no longer ours (taken over, or the job is gone)');
      throw lostOwnership();
    },
    stop() {
      clearInterval(timer);
    },
  };
}

export function lostOwnership(what = 'the job'): FerryError {
  return new FerryError('pull.lost_ownership', `this worker no longer owns ${what}; it stopped and left everything to the current owner`);
}
