import { Redis } from 'ioredis';
import type { AppServices } from '../api/app-services.js';
import type { FerryConfig } from '../config/load-config.js';
import { RegistryStore } from '../registry/registry-store.js';
import { HealthService } from '../services/health-service.js';
import { ModelService } from '../services/model-service.js';

/**
 * The composition root: builds stores and services from the config. The CLI, the API
 * and the workers all start here, so they share one wiring.
 */
export class FerryContext {
  readonly registry: RegistryStore;
  readonly models: ModelService;
  private redisClient?: Redis;
  private readonly closers: Array<() => Promise<void>> = [];

  constructor(readonly config: FerryConfig) {
    this.registry = new RegistryStore(config.registryDir);
    this.models = new ModelService({ registry: this.registry, modelRoot: config.modelRoot, pullRoot: config.pullRoot });
  }

  /** The API's Redis connection: fails fast (no offline queue) so an outage is a 503, not a hang. */
  get redis(): Redis {
    if (!this.redisClient) {
      if (!this.config.redisUrl) throw new Error('redisUrl is not resolved yet');
      this.redisClient = new Redis(this.config.redisUrl, { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: false });
      this.redisClient.on('error', () => undefined); // reported through /healthz and failing requests
    }
    return this.redisClient;
  }

  get health(): HealthService {
    return new HealthService({ redis: this.redis, registry: this.registry });
  }

  apiServices(): AppServices {
    return { models: this.models, health: this.health };
  }

  onClose(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    for (const fn of this.closers.reverse()) await fn().catch(() => undefined);
    this.redisClient?.disconnect();
  }
}
