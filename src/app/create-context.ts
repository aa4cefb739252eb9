import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { AppServices } from '../api/app-services.js';
import type { PullQueue } from '../queue/pull-queue.js';
import type { PullService } from '../services/pull-service.js';
import type { FlmSource } from '../sources/flm/flm-source.js';
import type { FerryConfig } from '../config/load-config.js';
import { RegistryStore } from '../registry/registry-store.js';
import { FerryError } from '../errors/ferry-error.js';
import { redactUrl } from '../util/redact-url.js';
import { BentoService } from '../services/bento-service.js';
import { CatalogueService } from '../services/catalogue-service.js';
import { SlotService } from '../services/slot-service.js';
import { HealthService } from '../services/health-service.js';
import { RegistryTransferService } from '../services/registry-transfer-service.js';
import { ModelService } from '../services/model-service.js';
import { HardwareService } from '../services/hardware-service.js';
import { slotOpenAIModels } from '../services/slot-openai-models.js';
import type { VerifyQueue } from '../queue/verify-queue.js';
import type { WarmQueue } from '../queue/warm-queue.js';
import type { VerifyService } from '../services/verify-service.js';
import type { SlotControlService } from '../services/slot-control-service.js';

/**
 * The API's (and the queues') Redis options: an outage must be a 503 within 2 s, never a hang.
 * No offline queue (a command while disconnected fails at once), no resend of in-flight
 * commands, and a command timeout for a Redis that is up but frozen (SIGSTOP, a full disk);
 * reconnects go on forever in the background. BullMQ's Queue objects share this connection.
 */
export const API_REDIS_OPTIONS = {
  enableOfflineQueue: false,
  maxRetriesPerRequest: 0,
  commandTimeout: 1200,
  connectTimeout: 1500,
  retryStrategy: (attempt: number) => Math.min(attempt * 100, 1000),
  lazyConnect: false,
} as const;

/**
 * The composition root: builds stores and services from the config. The CLI, the API
 * and the workers all start here, so they share one wiring.
 */
export class FerryContext {
  readonly registry: RegistryStore;
  readonly models: ModelService;
  readonly bento: BentoService;
  readonly slots: SlotService;
  readonly catalogue: CatalogueService;
  readonly hardware: HardwareService;
  private slotJobs?: { verifyQueue: VerifyQueue; warmQueue: WarmQueue; verify: VerifyService; slotControl: SlotControlService };
  private redisClient?: Redis;
  private pullService?: PullService;
  private flmSource?: FlmSource;
  private pullQueue?: PullQueue;
  private mirrorService?: import('../mirror/mirror-service.js').MirrorService;
  private readonly closers: Array<() => Promise<void>> = [];

  constructor(readonly config: FerryConfig) {
    this.registry = new RegistryStore(config.registryDir);
    this.slots = new SlotService({ slotsDir: config.slotsDir });
    this.hardware = new HardwareService({ flmBin: config.flmBin });
    this.catalogue = new CatalogueService({ registry: this.registry });
    this.bento = new BentoService({
      registries: config.registries,
      home: config.home,
      mountBin: config.mountBin,
      limits: { maxBytes: config.archiveMaxBytes, maxEntries: config.archiveMaxEntries },
    });
    this.models = new ModelService({
      registry: this.registry,
      modelRoot: config.modelRoot,
      pullRoot: config.pullRoot,
      openAIExtras: async () => [...(await this.bento.listOpenAI()), ...(await slotOpenAIModels(this.slots))],
      slotsUsing: (id) => this.slots.slotsUsing(id),
      npuPresent: () => this.hardware.npuPresent(),
      catalogue: (id) => this.catalogue.coordinatesFor(id),
    });
  }

  /** The API's Redis connection: fails fast (no offline queue) so an outage is a 503, not a hang. */
  get redis(): Redis {
    if (!this.redisClient) {
      if (!this.config.redisUrl) throw new Error('redisUrl is not resolved yet');
      // Loaded on first use: ioredis costs ~150 ms of start-up that `ferry model list` never needs.
      const { Redis: RedisClient } = createRequire(import.meta.url)('ioredis') as typeof import('ioredis');
      this.redisClient = new RedisClient(this.config.redisUrl, API_REDIS_OPTIONS);
      this.redisClient.on('error', () => undefined); // reported through /healthz and failing requests
    }
    return this.redisClient;
  }

  /** hal0 registry export/import (`ferry registry export|import`). */
  get registryTransfer(): RegistryTransferService {
    return new RegistryTransferService({
      registry: this.registry,
      models: this.models,
      modelRoot: this.config.modelRoot,
      limits: { maxBytes: this.config.archiveMaxBytes, maxEntries: this.config.archiveMaxEntries },
    });
  }

  get health(): HealthService {
    return new HealthService({ redis: this.redis, registry: this.registry });
  }

  /**
   * Waits for the fail-fast connection to be up: without an offline queue, a command sent
   * before the connection is ready would fail instead of waiting.
   */
  async redisReady(timeoutMs = 5000): Promise<void> {
    const client = this.redis;
    if (client.status === 'ready') return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(new FerryError('redis.unavailable', `Redis did not answer within ${timeoutMs / 1000} s`, { hint: 'check REDIS_URL, or start Redis' }));
      }, timeoutMs);
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      client.once('ready', onReady);
    });
  }

  /**
   * For CLI commands that talk to the queue: REDIS_URL (or config), else a Redis answering on
   * 127.0.0.1:6379. Unlike `serve`, never starts one: no worker would be attached to it.
   * One PING with a short connect timeout first, so an outage is said within ~1.5 s, naming
   * the URL (without its password), instead of after the connection's retries.
   */
  async connectRedisForClient(timeoutMs = 1500): Promise<void> {
    const { answersPing } = await import('../queue/resolve-redis.js');
    const url = this.config.redisUrl ?? 'redis://127.0.0.1:6379';
    if (!(await answersPing(url, timeoutMs))) {
      const where = this.config.redisUrl ? redactUrl(url) : `${url} (REDIS_URL is not set)`;
      throw new FerryError('redis.unavailable', `no Redis answered at ${where} within ${timeoutMs / 1000} s`, {
        hint: 'start Ferry with `npm start` (or `ferry serve`), or set REDIS_URL to a running Redis',
      });
    }
    this.config.redisUrl = url;
  }

  /**
   * The pull queue and service, built on first use (bullmq is imported lazily for the same
   * start-up reason as ioredis). The API's Hub client carries no token: only workers hold it.
   */
  /** FLM as a source: tag checks in the API, `flm pull` in workers. */
  async flm(): Promise<FlmSource> {
    if (!this.flmSource) {
      const { FlmSource } = await import('../sources/flm/flm-source.js');
      this.flmSource = new FlmSource({ flmBin: this.config.flmBin, flmModelPath: this.config.flmModelPath });
    }
    return this.flmSource;
  }

  async pulls(): Promise<PullService> {
    if (!this.pullService) {
      await this.redisReady();
      const [{ PullQueue }, { PullService }, { HfClient }, { PooledHfClient }] = await Promise.all([
        import('../queue/pull-queue.js'),
        import('../services/pull-service.js'),
        import('../sources/huggingface/hf-client.js'),
        import('../sources/huggingface/endpoint-pool.js'),
      ]);
      this.pullQueue = new PullQueue(this.redis, this.config.queuePrefix);
      const queue = this.pullQueue;
      this.onClose(() => queue.close());
      this.pullService = new PullService({
        queue,
        registry: this.registry,
        hub: this.config.hfEndpoints.length > 1 ? new PooledHfClient(this.config.hfEndpoints, { timeoutMs: 10_000 }) : new HfClient({ endpoint: this.config.hfEndpoint, timeoutMs: 10_000 }),
        pullRoot: this.config.pullRoot,
        diskMarginBytes: this.config.diskMarginBytes,
        flm: await this.flm(),
        catalogue: (id) => this.catalogue.coordinatesFor(id),
      });
    }
    return this.pullService;
  }

  /** The pull queue itself (for workers and the dashboard); built with `pulls()`. */
  async pullQueueStore(): Promise<PullQueue> {
    await this.pulls();
    return this.pullQueue!;
  }

  /** The pull, verify and warm queues, for the dashboard: the same Queue objects the services use. */
  async dashboardQueues(): Promise<import('bullmq').Queue[]> {
    const { verifyQueue, warmQueue } = await this.slotJobServices();
    const pull = (await this.pullQueueStore()).queue;
    return [pull, verifyQueue.queue, warmQueue.queue] as unknown as import('bullmq').Queue[];
  }

  async apiServices(): Promise<AppServices> {
    const { verify, slotControl } = await this.slotJobServices();
    const { WorkerService } = await import('../services/worker-service.js');
    const workers = new WorkerService({ queues: await this.dashboardQueues() });
    return { models: this.models, health: this.health, pulls: await this.pulls(), bento: this.bento, slots: this.slots, catalogue: this.catalogue, verify, slotControl, workers, mirror: await this.mirror(), metrics: await this.metricsService() };
  }

  /** The Hub mirror under /hub (src/mirror/), built on first use. */
  async mirror(): Promise<import('../mirror/mirror-service.js').MirrorService> {
    if (!this.mirrorService) {
      const { buildMirrorService } = await import('../mirror/build-mirror-service.js');
      this.mirrorService = buildMirrorService(this.config, this.registry, await this.pullQueueStore());
    }
    return this.mirrorService;
  }

  /** /metrics, read from the same queues (and Redis) as everything else; prom-client loads here only. */
  private async metricsService(): Promise<import('../services/metrics-service.js').MetricsService> {
    const [{ MetricsService }, { PullMetricsStore }] = await Promise.all([import('../services/metrics-service.js'), import('../queue/pull-metrics-store.js')]);
    const { verifyQueue, warmQueue } = await this.slotJobServices();
    const pull = (await this.pullQueueStore()).queue;
    const queues = { pull, verify: verifyQueue.queue, warm: warmQueue.queue } as unknown as Record<string, import('bullmq').Queue>;
    return new MetricsService({ redis: this.redis, queues, pullMetrics: new PullMetricsStore(this.redis, this.config.queuePrefix), registry: this.registry });
  }

  /** The verify and warm queues and the services on them (issue #4), built on first use like pulls(). */
  async slotJobServices(): Promise<NonNullable<FerryContext['slotJobs']>> {
    if (!this.slotJobs) {
      const pulls = await this.pulls();
      const [{ VerifyQueue }, { WarmQueue }, { VerifyService }, { SlotControlService }] = await Promise.all([
        import('../queue/verify-queue.js'),
        import('../queue/warm-queue.js'),
        import('../services/verify-service.js'),
        import('../services/slot-control-service.js'),
      ]);
      const verifyQueue = new VerifyQueue(this.redis, this.config.queuePrefix);
      const warmQueue = new WarmQueue(this.redis, this.config.queuePrefix);
      this.onClose(() => verifyQueue.close());
      this.onClose(() => warmQueue.close());
      this.slotJobs = {
        verifyQueue,
        warmQueue,
        verify: new VerifyService({ queue: verifyQueue, models: this.models }),
        slotControl: new SlotControlService({ slotsDir: this.config.slotsDir, slots: this.slots, models: this.models, pulls, warmQueue }),
      };
    }
    return this.slotJobs;
  }

  onClose(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    await this.registry.flush(); // the sidecar cache of the last write, so the next `ferry` starts fast
    for (const fn of this.closers.reverse()) await fn().catch(() => undefined);
    this.redisClient?.disconnect();
  }
}
