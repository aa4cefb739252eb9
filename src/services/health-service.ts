import type { Redis } from 'ioredis';
import type { RegistryStore } from '../registry/registry-store.js';

export interface HealthReport {
  ok: boolean;
  redis: { ok: boolean; error?: string };
  registry: { ok: boolean; models?: number; error?: string };
}

/** Answers whether this process can do its job: Redis reachable and the registry readable. */
export class HealthService {
  constructor(private readonly deps: { redis: Redis; registry: RegistryStore }) {}

  async check(): Promise<HealthReport> {
    const [redis, registry] = await Promise.all([this.checkRedis(), this.checkRegistry()]);
    return { ok: redis.ok && registry.ok, redis, registry };
  }

  private async checkRedis(): Promise<HealthReport['redis']> {
    try {
      const answer = await withTimeout(this.deps.redis.ping(), 1000);
      return { ok: answer === 'PONG' };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  private async checkRegistry(): Promise<HealthReport['registry']> {
    try {
      const snapshot = await this.deps.registry.read();
      return { ok: true, models: snapshot.models.size };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    promise.then(
      (v) => (clearTimeout(timer), resolve(v)),
      (e) => (clearTimeout(timer), reject(e)),
    );
  });
}
