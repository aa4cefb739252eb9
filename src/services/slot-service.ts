import { listSlotConfigs, readSlotConfig, type SlotConfig, type SlotDevice } from '../slots/slot-config.js';
import { SlotStateStore } from '../slots/slot-state-store.js';
import { isServable, type SlotState } from '../slots/slot-states.js';

/** A slot as the API and CLI show it: its file's settings and its runtime state together. */
export interface SlotView {
  name: string;
  port: number;
  device: SlotDevice;
  backend: string | null;
  /** `[model] default`: the model the slot is configured to serve; null when inactive. */
  model: string | null;
  context_size: number | null;
  autoload: boolean;
  state: SlotState;
  /** The model actually loaded or being loaded (may differ from `model` mid-swap). */
  model_id: string | null;
  updated_at: number;
  message: string | null;
  /** Requests may be sent to it now (ready, serving or idle). */
  servable: boolean;
}

export interface SlotServiceDeps {
  slotsDir: string;
  states?: SlotStateStore;
}

/**
 * Reading slots for the CLI and the API. Changing them (assign, swap, warm) goes through
 * jobs in a later step; this service only reports, and answers which slots use a model.
 */
export class SlotService {
  readonly states: SlotStateStore;

  constructor(private readonly deps: SlotServiceDeps) {
    this.states = deps.states ?? new SlotStateStore(deps.slotsDir);
  }

  async list(): Promise<SlotView[]> {
    const configs = await listSlotConfigs(this.deps.slotsDir);
    return Promise.all(configs.map((c) => this.view(c)));
  }

  /** `slot.not_found` for a slot without a file, `slot.invalid` for a bad name. */
  async get(name: string): Promise<SlotView> {
    return this.view(await readSlotConfig(this.deps.slotsDir, name));
  }

  /** Slots configured for the model or holding it now; the registry refuses to remove it while any do. */
  async slotsUsing(modelId: string): Promise<string[]> {
    const slots = await this.list();
    return slots.filter((s) => s.model === modelId || (s.model_id === modelId && s.state !== 'offline')).map((s) => s.name);
  }

  private async view(config: SlotConfig): Promise<SlotView> {
    const runtime = await this.states.read(config.slot.name);
    return {
      name: config.slot.name,
      port: config.slot.port,
      device: config.slot.device,
      backend: config.slot.backend ?? null,
      model: config.model.default ? config.model.default : null,
      context_size: config.model.context_size ?? null,
      autoload: config.slot.autoload ?? false,
      state: runtime.state,
      model_id: runtime.model_id,
      updated_at: runtime.updated_at,
      message: runtime.message,
      servable: isServable(runtime.state),
    };
  }
}
