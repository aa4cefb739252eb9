import { listSlotConfigs } from '../slots/slot-config.js';
import type { SlotStateStore } from '../slots/slot-state-store.js';
import type { PullFailure } from '../queue/pull-worker.js';
import type { PullJobData, PullResult } from '../queue/pull-status.js';
import type { VerifyQueue } from '../queue/verify-queue.js';
import type { VerifyJobData, VerifyResult } from '../queue/verify-status.js';
import type { WarmQueue } from '../queue/warm-queue.js';

export interface SlotChainDeps {
  slotsDir: string;
  states: SlotStateStore;
  verifyQueue: VerifyQueue;
  warmQueue: WarmQueue;
  log: (message: string) => void;
}

/** What a swap writes into state.json while its chain runs (an extra key hal0 ignores). */
export interface SwapMarker {
  model: string;
  pull_job: string | null;
}

/**
 * The swap chain, worker side: pull completed -> verify job -> warm job, each enqueued by the
 * worker that finished the step before (so it survives an API restart). A slot waits for a
 * pull when the pull's job carries `chain.slot`, or when its state.json has a `swap` marker for
 * the model (a swap that joined a pull someone else had already started).
 */
export class SlotChain {
  constructor(private readonly deps: SlotChainDeps) {}

  async onPullCompleted(data: PullJobData, result: PullResult): Promise<void> {
    for (const slot of await this.waitingSlots(data)) {
      await this.deps.states.update(slot, { message: `verifying ${data.model_id}` });
      await this.deps.verifyQueue.enqueue({ model_id: result.model_id, requested_at: Date.now(), chain: { slot } });
    }
  }

  /** Failed for good: the slot goes to error; cancelled: back to offline. A slot still serving its old model keeps serving. */
  async onPullFailed(data: PullJobData, failure: PullFailure): Promise<void> {
    for (const slot of await this.waitingSlots(data)) {
      const why = failure.cancelled ? `the pull of ${data.model_id} was cancelled` : `the pull of ${data.model_id} failed: ${failure.code}: ${failure.message}`;
      await this.endSwap(slot, failure.cancelled ? 'offline' : 'error', why);
    }
  }

  async onVerifyFinished(data: VerifyJobData, result: VerifyResult): Promise<void> {
    const slot = data.chain?.slot;
    if (!slot) return;
    if (result.state === 'missing') return this.endSwap(slot, 'error', `${data.model_id} is missing ${result.corrupt!.file}`);
    if (result.state === 'corrupt') {
      const c = result.corrupt!;
      return this.endSwap(slot, 'error', `${data.model_id} is corrupt: ${c.file} has sha256 ${c.found}, expected ${c.expected}`);
    }
    await this.deps.states.update(slot, { message: `verified ${data.model_id}; loading` });
    await this.deps.warmQueue.enqueue({ slot, model: data.model_id, requested_at: Date.now() });
  }

  async onVerifyFailed(data: VerifyJobData, err: Error): Promise<void> {
    if (data.chain) await this.endSwap(data.chain.slot, 'error', `verifying ${data.model_id} failed: ${err.message}`);
  }

  private async endSwap(slot: string, to: 'offline' | 'error', message: string): Promise<void> {
    const state = await this.deps.states.read(slot);
    if (state.state === 'pulling') await this.deps.states.transition(slot, to, { message, swap: null });
    else await this.deps.states.update(slot, { message, swap: null });
    this.deps.log(`slot ${slot}: ${message}`);
  }

  private async waitingSlots(data: PullJobData): Promise<string[]> {
    const slots = new Set<string>(data.chain ? [data.chain.slot] : []);
    for (const config of await listSlotConfigs(this.deps.slotsDir).catch(() => [])) {
      const swap = (await this.deps.states.read(config.slot.name).catch(() => undefined))?.swap as SwapMarker | null | undefined;
      if (swap?.model === data.model_id) slots.add(config.slot.name);
    }
    return [...slots];
  }
}
