import { stat } from 'node:fs/promises';
import { FerryError } from '../errors/ferry-error.js';
import { hasFlmTagShape } from '../registry/model-id.js';
import { findCatalogueEntry, type CatalogueEntry } from '../registry/curated.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { PullStatus } from '../queue/pull-status.js';
import type { WarmQueue } from '../queue/warm-queue.js';
import { readSlotConfig, updateSlotConfig, type SlotConfig } from '../slots/slot-config.js';
import { validateAssignment } from './hardware-probe.js';
import type { ModelService } from './model-service.js';
import type { PullRequestBody, PullService } from './pull-service.js';
import type { SwapMarker } from './slot-chain.js';
import type { SlotService, SlotView } from './slot-service.js';
import { pathExists } from '../util/fs-exists.js';

export interface SlotControlDeps {
  slotsDir: string;
  slots: SlotService;
  models: ModelService;
  pulls: PullService;
  warmQueue: WarmQueue;
}

/** What assign and swap answer (202: the work continues in jobs). */
export interface SlotChangeStarted {
  slot: string;
  model: string;
  /** warm: the model is present and a warm job loads it; pull: a pull runs first, then verify, then warm. */
  action: 'warm' | 'pull';
  /** The warm job (action warm) or the pull job (action pull). */
  job_id: string | null;
  state: string;
  status_url: string;
}

/** What unload answers (202: a warm job on a worker stops the backend). */
export interface SlotUnloadStarted {
  slot: string;
  /** The model the slot had as its default, now cleared. */
  model: string | null;
  action: 'unload';
  job_id: string;
  state: string;
  status_url: string;
}

/** A slot as GET /api/slots/:name shows it: while a swap pulls, the pull's status too. */
export type SlotDetail = SlotView & { pull: PullStatus | null };

/**
 * Changing what a slot serves (API and CLI side). Only files and queues are touched here:
 * backends are started and stopped by warm jobs on the workers.
 */
export class SlotControlService {
  constructor(private readonly deps: SlotControlDeps) {}

  /** `[model] default` := model (under the slot file's lock), then a warm job loads it. */
  async assign(name: string, modelId: string): Promise<SlotChangeStarted> {
    const config = await readSlotConfig(this.deps.slotsDir, name);
    const entry = await this.deps.models.get(modelId);
    this.check(entry, config);
    await updateSlotConfig(this.deps.slotsDir, name, (c) => void (c.model = { ...c.model, default: entry.id }));
    const jobId = await this.deps.warmQueue.enqueue({ slot: name, requested_at: Date.now() });
    const state = await this.deps.slots.states.read(name);
    return { slot: name, model: entry.id, action: 'warm', job_id: jobId, state: state.state, status_url: statusUrl(name) };
  }

  /**
   * Present model: like assign. Missing: refused up front when the slot cannot serve it (422,
   * nothing changed); otherwise the pull is enqueued with a chain marker and an offline (or
   * failed) slot goes to `pulling`. A slot serving another model keeps serving it while the
   * new one downloads (hal0's table has no ready -> pulling), and switches once it is verified.
   */
  async swap(name: string, ref: string, body: Omit<PullRequestBody, 'sha256'> = {}): Promise<SlotChangeStarted> {
    const config = await readSlotConfig(this.deps.slotsDir, name);
    const known = await this.deps.models.find(ref).catch(() => undefined);
    if (known && (await pathExists(known.path))) return this.assign(name, ref);
    this.check(known ?? candidateFor(ref, body), config);
    const states = this.deps.slots.states;
    const before = await states.read(name);
    const idle = before.state === 'offline' || before.state === 'error';
    if (idle) await states.transition(name, 'pulling', { model_id: ref, message: `pulling ${ref}`, swap: { model: ref, pull_job: null } satisfies SwapMarker });
    let started;
    try {
      started = await this.deps.pulls.start(ref, body, { slot: name });
    } catch (err) {
      if (idle) await states.transition(name, before.state === 'error' ? 'error' : 'offline', { message: before.message, model_id: before.model_id, swap: null });
      throw err;
    }
    if (started.httpStatus === 200) return this.assign(name, started.model_id);
    const marker: SwapMarker = { model: started.model_id, pull_job: started.id };
    if (idle) await states.update(name, { model_id: started.model_id, swap: marker });
    else await states.update(name, { swap: marker, message: `pulling ${started.model_id}; still serving ${before.model_id ?? 'the old model'}` });
    return { slot: name, model: started.model_id, action: 'pull', job_id: started.id, state: idle ? 'pulling' : before.state, status_url: statusUrl(name) };
  }

  /**
   * `ferry slot unload`: the slot file's `[model] default` is cleared (an inactive slot, so
   * the model is no longer in use), then a warm job on a worker stops the backend, under the
   * same per-slot lock as loads, and leaves the slot offline. The worker that started a
   * backend, or any on its host, can stop it.
   */
  async unload(name: string): Promise<SlotUnloadStarted> {
    const before = await readSlotConfig(this.deps.slotsDir, name);
    await updateSlotConfig(this.deps.slotsDir, name, (c) => void delete c.model.default);
    const jobId = await this.deps.warmQueue.enqueue({ slot: name, requested_at: Date.now() });
    const state = await this.deps.slots.states.read(name);
    return { slot: name, model: before.model.default || null, action: 'unload', job_id: jobId, state: state.state, status_url: statusUrl(name) };
  }

  /** True once a warm job has finished (either way), so a waiting CLI can stop polling. */
  async warmFinished(jobId: string): Promise<boolean> {
    return ['completed', 'failed', 'unknown'].includes(await this.deps.warmQueue.jobState(jobId));
  }

  /** The slot plus, while a swap's pull runs, its status; a pull cancelled before a worker took it sends the slot back to offline here. */
  async get(name: string): Promise<SlotDetail> {
    const view = await this.deps.slots.get(name);
    const swap = (await this.deps.slots.states.read(name)).swap as SwapMarker | null | undefined;
    if (!swap) return { ...view, pull: null };
    const pull = await this.deps.pulls.status(swap.model).catch(() => null);
    if (pull && view.state === 'pulling' && pull.state === 'cancelled' && (!swap.pull_job || pull.id === swap.pull_job)) {
      await this.deps.slots.states.transition(name, 'offline', { message: `the pull of ${swap.model} was cancelled`, swap: null }).catch(() => undefined);
      return { ...(await this.deps.slots.get(name)), pull };
    }
    if (pull && view.state === 'pulling' && pull.state === 'running' && pull.bytes_total > 0) {
      view.message = `pulling ${swap.model}: ${((100 * pull.bytes_downloaded) / pull.bytes_total).toFixed(1)}%`;
    }
    return { ...view, pull };
  }

  private check(entry: CatalogueEntry | RegistryEntry, config: SlotConfig): void {
    validateAssignment(entry, { device: config.slot.device, backend: config.slot.backend, slot: config.slot.name });
  }
}

/** What a missing model will be, for the servability check before anything is pulled. */
function candidateFor(ref: string, body: Omit<PullRequestBody, 'sha256'>): CatalogueEntry | RegistryEntry {
  const file = Array.isArray(body.hf_file) ? body.hf_file[0] : body.hf_file;
  if (file) return { id: ref, path: file, hf_filename: file };
  const catalogued = findCatalogueEntry(ref);
  if (catalogued) return catalogued;
  if (hasFlmTagShape(ref)) return { id: ref, path: ref, backends: ['npu'], metadata: { runtime: 'flm' } };
  // An hf.co/...:QUANT shorthand or an unknown id: GGUF is all Ferry pulls from the Hub by quant.
  if (ref.startsWith('hf.co/')) return { id: ref, path: `${ref}.gguf` };
  throw new FerryError('model.invalid_source', `no source for "${ref}": it is not in the registry or the catalogue`, { hint: 'pass hf_repo and hf_file, or pull it first' });
}

function statusUrl(name: string): string {
  return `/api/slots/${encodeURIComponent(name)}`;
}
