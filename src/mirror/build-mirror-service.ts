import type { FerryConfig } from '../config/load-config.js';
import type { PullQueue } from '../queue/pull-queue.js';
import type { RegistryStore } from '../registry/registry-store.js';
import { HeldFiles } from './held-files.js';
import { MirrorService } from './mirror-service.js';
import { MirrorStore } from './mirror-store.js';
import { UpstreamHub } from './upstream-hub.js';
import { QueuePullThrough } from './pull-through.js';

/**
 * The mirror's wiring from the config (kept here so create-context.ts gains one line). Without
 * a queue (the CLI's `ferry mirror list`), nothing is pulled through.
 */
export function buildMirrorService(config: FerryConfig, registry: RegistryStore, queue?: PullQueue): MirrorService {
  const store = new MirrorStore(config.modelRoot);
  return new MirrorService({
    upstream: new UpstreamHub(config.hfEndpoint),
    store,
    held: new HeldFiles(registry),
    offline: config.mirrorOffline,
    refTtlMs: config.mirrorRefTtlS * 1000,
    publicRead: config.mirrorPublic,
    maxStreamsPerClient: config.mirrorMaxStreamsPerClient,
    ...(queue ? { pullThrough: new QueuePullThrough({ queue, store, pullRoot: config.pullRoot }) } : {}),
  });
}
