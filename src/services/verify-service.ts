import { FerryError } from '../errors/ferry-error.js';
import { assertModelId } from '../registry/model-id.js';
import type { VerifyQueue } from '../queue/verify-queue.js';
import type { VerifyState, VerifyStatus } from '../queue/verify-status.js';
import type { ModelService } from './model-service.js';

export interface VerifyStarted {
  id: string;
  model_id: string;
  state: VerifyState;
  status_url: string;
  /** A verify of this model was already queued or running: its job is returned. */
  resumed?: boolean;
}

const FINISHED: VerifyState[] = ['ok', 'corrupt', 'missing', 'not_verifiable', 'failed'];

/** Starting and reading verify jobs; workers do the hashing (the API never reads weights). */
export class VerifyService {
  constructor(private readonly deps: { queue: VerifyQueue; models: ModelService }) {}

  async start(modelId: string): Promise<VerifyStarted> {
    const entry = await this.deps.models.get(modelId); // model.not_found before anything is queued
    const { jobId, resumed } = await this.deps.queue.enqueue({ model_id: entry.id, requested_at: Date.now() });
    const status = await this.deps.queue.statusOfJob(jobId);
    return { id: jobId, model_id: entry.id, state: status?.state ?? 'queued', status_url: `/api/models/${encodeURIComponent(entry.id)}/verify/status`, ...(resumed ? { resumed: true } : {}) };
  }

  status(modelId: string): Promise<VerifyStatus> {
    return this.deps.queue.status(assertModelId(modelId));
  }

  /** Polls until the job finishes (the CLI waits this way; any API process could answer). */
  async wait(jobId: string, pollMs = 200): Promise<VerifyStatus> {
    for (;;) {
      const status = await this.deps.queue.statusOfJob(jobId);
      if (!status) throw new FerryError('model.verify_job_not_found', `verify job ${jobId} disappeared`);
      if (FINISHED.includes(status.state)) return status;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
}
