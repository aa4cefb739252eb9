import { setTimeout as sleep } from 'node:timers/promises';
import type { ByteSink } from '../../util/byte-sink.js';

/**
 * A worker's shared limits on downloads: connections per host (config `max_connections_per_host`)
 * and an optional bandwidth cap (config `max_bandwidth_bps`), across every pull the worker runs.
 * Parallel downloads run on the worker's own event loop, so plain in-process counters suffice.
 */
export interface TransferLimitsOptions {
  /** Connections open to one host at once, across all pulls. @defaultValue 16 */
  maxConnectionsPerHost?: number;
  /** Bytes per second for all downloads together; undefined: no cap. */
  maxBandwidthBps?: number;
}

/** How far ahead of its rate the cap lets a burst go: small, so a 10 s average is within a few percent. */
const BURST_MS = 100;

export class TransferLimits {
  private readonly perHost: number;
  private readonly inUse = new Map<string, number>();
  private readonly waiting = new Map<string, Array<() => void>>();
  /** Bandwidth cap as a virtual schedule (GCRA): the time by which every byte taken so far may have arrived. */
  private theoreticalArrival = 0;

  constructor(readonly options: TransferLimitsOptions = {}) {
    this.perHost = Math.max(1, options.maxConnectionsPerHost ?? 16);
  }

  get bandwidthBps(): number | undefined {
    return this.options.maxBandwidthBps;
  }

  /** Waits for a connection to `host` to be allowed; the answer releases it (once). */
  async acquire(host: string, signal?: AbortSignal): Promise<() => void> {
    while ((this.inUse.get(host) ?? 0) >= this.perHost) {
      signal?.throwIfAborted();
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(host) ?? [];
        this.waiting.set(host, queue);
        const wake = () => {
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        queue.push(wake);
        signal?.addEventListener('abort', wake, { once: true });
      });
    }
    this.inUse.set(host, (this.inUse.get(host) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.inUse.get(host) ?? 1) - 1;
      if (left > 0) this.inUse.set(host, left);
      else this.inUse.delete(host);
      this.waiting.get(host)?.shift()?.();
    };
  }

  /** Connections open to `host` now. */
  connections(host: string): number {
    return this.inUse.get(host) ?? 0;
  }

  /** Milliseconds to wait before reading more, under the bandwidth cap (0: read now). */
  delayMs(now = Date.now()): number {
    if (!this.options.maxBandwidthBps) return 0;
    return Math.max(0, this.theoreticalArrival - now - BURST_MS);
  }

  /** Accounts for `bytes` just read. */
  consume(bytes: number, now = Date.now()): void {
    const rate = this.options.maxBandwidthBps;
    if (!rate) return;
    this.theoreticalArrival = Math.max(this.theoreticalArrival, now) + (bytes * 1000) / rate;
  }

  /** The most one read should take under the cap, so a single read cannot overshoot it by much. */
  readSize(fallback: number): number {
    const rate = this.options.maxBandwidthBps;
    return rate ? Math.max(16 * 1024, Math.min(fallback, Math.floor(rate / 20))) : fallback;
  }
}

/** `sink` under the bandwidth cap: nothing is lent while the cap says wait, and reads are kept small enough not to overshoot it. */
export function throttledSink(sink: ByteSink, limits: TransferLimits | undefined): ByteSink {
  if (!limits?.bandwidthBps) return sink;
  return {
    lend() {
      if (limits.delayMs() > 0) return undefined;
      const into = sink.lend();
      return into && into.subarray(0, limits.readSize(into.length));
    },
    commit(n) {
      limits.consume(n);
      sink.commit(n);
    },
    async writable() {
      for (let wait = limits.delayMs(); wait > 0; wait = limits.delayMs()) await sleep(wait);
      await sink.writable();
    },
  };
}

/** One file's share of a pull's connections (see ConnectionBudget). */
export interface BudgetShare {
  /** Waits for a connection; the answer gives it back (once). */
  acquire(signal?: AbortSignal): Promise<() => void>;
  /** The file is done (or failed): it no longer has a claim on a connection. */
  leave(): void;
}

/**
 * A pull's connections (config `pull_connections`), shared by the files it downloads at once.
 * Fair between files: each file's first connection comes before any file's second, so one big
 * file's parts cannot keep another file waiting for a connection of its own.
 */
export class ConnectionBudget {
  private inUse = 0;
  /** Files that hold no connection now and want one. */
  private starving = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly max: number) {}

  join(): BudgetShare {
    this.starving++;
    let held = 0;
    let left = false;
    return {
      acquire: async (signal) => {
        for (;;) {
          signal?.throwIfAborted();
          const first = held === 0;
          if (this.inUse < this.max - (first ? 0 : this.starving)) {
            this.inUse++;
            if (held++ === 0 && !left) this.starving--;
            break;
          }
          await this.wait(signal);
        }
        let released = false;
        return () => {
          if (released) return;
          released = true;
          this.inUse--;
          if (--held === 0 && !left) this.starving++;
          this.wakeAll();
        };
      },
      leave: () => {
        if (left) return;
        left = true;
        if (held === 0) this.starving--;
        this.wakeAll();
      },
    };
  }

  private wait(signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const wake = () => {
        signal?.removeEventListener('abort', wake);
        resolve();
      };
      this.waiters.push(wake);
      signal?.addEventListener('abort', wake, { once: true });
    });
  }

  private wakeAll(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}
