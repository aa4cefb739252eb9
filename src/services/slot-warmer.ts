import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { FerryError, isFerryError } from '../errors/ferry-error.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { RegistryStore } from '../registry/registry-store.js';
import type { WarmJobData, WarmResult } from '../queue/warm-queue.js';
import { BackendProcess } from '../slots/backend-process.js';
import { splitCommandLine } from '../slots/command-template.js';
import { resolveBackend, type BackendConfig } from '../slots/resolve-backend.js';
import { readSlotConfig, updateSlotConfig, type SlotConfig } from '../slots/slot-config.js';
import type { SlotRuntimeState, SlotStateStore } from '../slots/slot-state-store.js';
import { isServable, type SlotState } from '../slots/slot-states.js';
import { stopPid } from '../slots/stop-pid.js';
import { withFileLock } from '../stores/file-lock.js';
import { validateAssignment } from './hardware-probe.js';

const HOST = hostname();
/** The context size passed when neither the slot nor the model names one (llama-server needs a number). */
const DEFAULT_CONTEXT = 4096;

export interface SlotWarmerDeps {
  slotsDir: string;
  states: SlotStateStore;
  registry: RegistryStore;
  /** config.toml `[backends]`. */
  backends: Record<string, BackendConfig>;
  log: (message: string) => void;
}

/**
 * Worker side of the warm queue. Loads a slot's model into its backend and owns the backend
 * processes it started (slot -> BackendProcess): they outlive the job and die with this
 * worker. State moves unloading -> warming -> ready, or to error with the backend's last
 * output lines. state.json records the backend's pid and host, so a warm job on another
 * worker of the same host can stop a backend it did not start. A backend on another host
 * cannot be stopped from here (see README: run warm workers on the box with the devices).
 */
export class SlotWarmer {
  private readonly owned = new Map<string, BackendProcess>();

  constructor(private readonly deps: SlotWarmerDeps) {}

  /** Jobs of one slot run one at a time, across workers: each loads what the slot file says when it runs. */
  async warm(data: WarmJobData): Promise<WarmResult> {
    const name = data.slot;
    await readSlotConfig(this.deps.slotsDir, name); // slot.not_found before a lock directory is made
    await mkdir(join(this.deps.slotsDir, name), { recursive: true });
    return withFileLock(join(this.deps.slotsDir, name, 'warm.lock'), () => this.warmLocked(data), { timeoutMs: 15 * 60_000, staleMs: 30_000 });
  }

  private async warmLocked(data: WarmJobData): Promise<WarmResult> {
    const name = data.slot;
    const config = data.model
      ? await updateSlotConfig(this.deps.slotsDir, name, (c) => void (c.model = { ...c.model, default: data.model }))
      : await readSlotConfig(this.deps.slotsDir, name);
    const modelId = config.model.default || undefined;
    const current = await this.deps.states.read(name);
    if (!modelId) {
      await this.unload(name);
      return { slot: name, state: 'offline', model_id: null };
    }
    const mine = this.owned.get(name);
    if (isServable(current.state) && current.model_id === modelId && mine?.running && current.pid === mine.pid) {
      return { slot: name, state: current.state, model_id: modelId, pid: mine.pid, unchanged: true };
    }
    let entry: RegistryEntry;
    let backend: ReturnType<typeof resolveBackend>;
    try {
      entry = await this.modelEntry(modelId);
      validateAssignment(entry, { device: config.slot.device, backend: config.slot.backend, slot: name });
      backend = resolveBackend(config.slot, this.deps.backends);
    } catch (err) {
      await this.stopCurrent(name, current);
      await this.fail(name, modelId, (err as Error).message);
      throw err;
    }
    await this.stopCurrent(name, current);
    await this.deps.states.transition(name, 'warming', { model_id: modelId, port: config.slot.port, message: `loading ${modelId}`, pid: null, host: null });
    let proc: BackendProcess;
    try {
      proc = await BackendProcess.start({
        command: backend.command,
        values: placeholders(config, entry),
        healthUrl: backend.healthUrl,
        readyTimeoutMs: backend.readyTimeoutMs,
        stopGraceMs: backend.stopGraceMs,
        env: config.server.env,
        label: `slot "${name}"`,
      });
    } catch (err) {
      const lines = isFerryError(err) && Array.isArray(err.details?.lines) ? (err.details.lines as string[]) : [];
      await this.fail(name, modelId, [(err as Error).message, ...lines].join('\n'));
      throw err;
    }
    this.own(name, proc);
    await this.deps.states.transition(name, 'ready', {
      model_id: modelId,
      port: config.slot.port,
      pid: proc.pid ?? null,
      host: HOST,
      backend: backend.name,
      program: proc.argv[0],
      stop_grace_ms: backend.stopGraceMs,
      swap: null,
    });
    this.deps.log(`slot ${name}: ${modelId} ready on port ${config.slot.port} (pid ${proc.pid})`);
    return { slot: name, state: 'ready', model_id: modelId, pid: proc.pid };
  }

  /** Stops the slot's backend (wherever on this host it runs) and leaves the slot offline. */
  async unload(name: string): Promise<void> {
    const current = await this.deps.states.read(name);
    await this.stopCurrent(name, current);
    const after = await this.deps.states.read(name);
    if (after.state === 'unloading' || after.state === 'error') await this.deps.states.transition(name, 'offline', { pid: null, host: null });
  }

  /** Worker shutdown: the backends this worker owns die with it, so their slots go offline first. */
  async close(): Promise<void> {
    for (const name of [...this.owned.keys()]) await this.unload(name).catch((err: Error) => this.deps.log(`slot ${name}: unload at shutdown failed: ${err.message}`));
  }

  private async modelEntry(modelId: string): Promise<RegistryEntry> {
    const entry = await this.deps.registry.get(modelId);
    if (!entry) throw new FerryError('model.not_found', `model "${modelId}" is not in the registry`, { hint: 'pull it first, or swap with `ferry slot swap`, which pulls it' });
    const corrupt = entry.metadata?.corrupt as { file?: string } | undefined;
    if (corrupt) throw new FerryError('model.corrupt', `model "${modelId}" failed its last verify (${corrupt.file ?? 'a file'} does not match its sha256)`, { hint: 'pull it again, then `ferry model verify`' });
    return entry;
  }

  /** Whatever runs in the slot now goes: through `unloading` when something is (or may be) loaded. */
  private async stopCurrent(name: string, current: SlotRuntimeState): Promise<void> {
    const loaded: SlotState[] = ['ready', 'serving', 'idle', 'warming'];
    const pid = typeof current.pid === 'number' ? current.pid : undefined;
    if (loaded.includes(current.state) || (current.state === 'error' && (pid || this.owned.has(name)))) {
      await this.deps.states.transition(name, 'unloading', { message: `stopping ${current.model_id ?? 'the backend'}` });
    }
    const local = this.owned.get(name);
    if (local) {
      this.owned.delete(name); // before stopping, so the exit watcher does not call it a crash
      await local.stop();
    } else if (pid && current.host === HOST) {
      const grace = typeof current.stop_grace_ms === 'number' ? current.stop_grace_ms : 10_000;
      if (await stopPid(pid, typeof current.program === 'string' ? current.program : undefined, grace)) this.deps.log(`slot ${name}: stopped backend pid ${pid} started by another worker`);
    } else if (pid && current.host && current.host !== HOST) {
      this.deps.log(`slot ${name}: its old backend (pid ${pid}) runs on ${String(current.host)}; only a worker there can stop it`);
    }
  }

  private async fail(name: string, modelId: string, message: string): Promise<void> {
    const now = await this.deps.states.read(name);
    if (now.state === 'error') await this.deps.states.update(name, { model_id: modelId, message, pid: null });
    else await this.deps.states.transition(name, 'error', { model_id: modelId, message, pid: null, host: null });
  }

  /** Keeps the backend and watches it: a backend that dies on its own puts the slot in error with its last lines. */
  private own(name: string, proc: BackendProcess): void {
    this.owned.set(name, proc);
    void proc.exited.then(async (exit) => {
      if (this.owned.get(name) !== proc) return; // stopped on purpose
      this.owned.delete(name);
      const state = await this.deps.states.read(name);
      if (state.pid !== proc.pid || !isServable(state.state)) return;
      const how = exit.signal ? `on ${exit.signal}` : `with code ${exit.exitCode}`;
      this.deps.log(`slot ${name}: backend exited ${how}`);
      await this.deps.states.transition(name, 'error', { message: [`backend exited ${how}`, ...proc.outputTail()].join('\n'), pid: null });
    }).catch((err: Error) => this.deps.log(`slot ${name}: ${err.message}`));
  }
}

function placeholders(config: SlotConfig, entry: RegistryEntry): Record<string, string | number | string[]> {
  const args = config.server.extra_args;
  const defaults = entry.defaults as { context_size?: unknown } | undefined;
  return {
    path: entry.path,
    model: entry.id,
    port: config.slot.port,
    context_size: config.model.context_size ?? (typeof defaults?.context_size === 'number' ? defaults.context_size : DEFAULT_CONTEXT),
    extra_args: args === undefined ? [] : typeof args === 'string' ? splitCommandLine(args) : args,
  };
}
