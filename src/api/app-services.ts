import type { BentoService } from '../services/bento-service.js';
import type { CatalogueService } from '../services/catalogue-service.js';
import type { HealthService } from '../services/health-service.js';
import type { ModelService } from '../services/model-service.js';
import type { PullService } from '../services/pull-service.js';
import type { SlotService } from '../services/slot-service.js';
import type { SlotControlService } from '../services/slot-control-service.js';
import type { VerifyService } from '../services/verify-service.js';
import type { WorkerService } from '../services/worker-service.js';
import type { MirrorService } from '../mirror/mirror-service.js';
import type { MetricsService } from '../services/metrics-service.js';

/** What the routes may call. Routes never reach past these into files or Redis. */
export interface AppServices {
  models: ModelService;
  health: HealthService;
  bento: BentoService;
  pulls: PullService;
  slots: SlotService;
  catalogue: CatalogueService;
  verify: VerifyService;
  slotControl: SlotControlService;
  /** The dashboard's Workers view: who is connected to the queues and what each runs. */
  workers: WorkerService;
  /** The Hub mirror under /hub (issue #13); absent: no /hub routes. */
  mirror?: MirrorService;
  /** GET /metrics; absent: no metrics route (tests that build a partial app). */
  metrics?: MetricsService;
}
