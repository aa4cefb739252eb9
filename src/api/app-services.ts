import type { HealthService } from '../services/health-service.js';
import type { ModelService } from '../services/model-service.js';

/** What the routes may call. Routes never reach past these into files or Redis. */
export interface AppServices {
  models: ModelService;
  health: HealthService;
}
