import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FerryError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../stores/atomic-write.js';
import { withFileLock } from '../stores/file-lock.js';
import { assertSlotName } from './slot-config.js';
import { assertTransition, isSlotState, type SlotState } from './slot-states.js';

/** Transitions kept in state.json's `history`. */
const HISTORY_LENGTH = 20;

/** A slot's runtime state as hal0 keeps it in `state.json`. */
export interface SlotRuntimeState {
  name: string;
  state: SlotState;
  /** The registry id loaded (or being loaded); null when none. */
  model_id: string | null;
  port: number | null;
  /** Epoch seconds, like hal0's job timestamps. */
  updated_at: number;
  /** Why the slot is in this state (an error's last output lines, a pull's progress). */
  message: string | null;
  [key: string]: unknown;
}

/** Fields a transition or update may set; `state`, `name` and `updated_at` belong to the store. */
export type SlotStatePatch = Partial<Pick<SlotRuntimeState, 'model_id' | 'port' | 'message'>> & Record<string, unknown>;

/**
 * Runtime state per slot in `<slotsDir>/<name>/state.json` (hal0's older flat
 * `<name>.state.json` is still read). Every change happens under a per-slot lock directory,
 * re-reads the file under it and replaces it atomically, so two processes (API, worker)
 * cannot both move a slot out of the same state.
 */
export class SlotStateStore {
  constructor(private readonly slotsDir: string) {}

  statePath(name: string): string {
    return join(this.slotsDir, assertSlotName(name), 'state.json');
  }

  /** The slot's state; a slot that never ran is `offline`. */
  async read(name: string): Promise<SlotRuntimeState> {
    const file = this.statePath(name);
    const current = (await readJson(file)) ?? (await readJson(join(this.slotsDir, `${name}.state.json`)));
    if (current === undefined) return { name, state: 'offline', model_id: null, port: null, updated_at: 0, message: null };
    return normalise(name, current, file);
  }

  /**
   * Moves a slot to `to`, refusing an illegal transition with `slot.invalid_transition`.
   * `message` is cleared unless the patch sets it, so an old error does not linger on a
   * ready slot.
   */
  async transition(name: string, to: SlotState, patch: SlotStatePatch = {}): Promise<SlotRuntimeState> {
    return this.locked(name, async (current) => {
      assertTransition(name, current.state, to);
      // A short trail of states (an extra key hal0 ignores): what `ferry slot show` and tests read to see how a slot got here.
      const history = [...(Array.isArray(current.history) ? current.history : []), { state: to, at: Date.now() / 1000 }].slice(-HISTORY_LENGTH);
      return { ...current, message: null, ...patch, name, state: to, history };
    });
  }

  /** Changes fields without changing the state (a pull's progress message, a new port). */
  async update(name: string, patch: SlotStatePatch): Promise<SlotRuntimeState> {
    return this.locked(name, async (current) => ({ ...current, ...patch, name, state: current.state }));
  }

  private async locked(name: string, change: (current: SlotRuntimeState) => Promise<SlotRuntimeState>): Promise<SlotRuntimeState> {
    const file = this.statePath(name);
    await mkdir(join(this.slotsDir, name), { recursive: true });
    return withFileLock(`${file}.lock`, async () => {
      const next = await change(await this.read(name));
      next.updated_at = Date.now() / 1000;
      await writeFileAtomic(file, JSON.stringify(next, null, 2) + '\n');
      return next;
    });
  }
}

async function readJson(file: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a JSON object');
    return value as Record<string, unknown>;
  } catch (err) {
    throw new FerryError('slot.invalid', `${file}: ${(err as Error).message}`, { hint: 'remove the file to reset the slot to offline' });
  }
}

function normalise(name: string, raw: Record<string, unknown>, file: string): SlotRuntimeState {
  if (!isSlotState(raw.state)) throw new FerryError('slot.invalid', `${file}: unknown state ${JSON.stringify(raw.state)}`);
  const updated = typeof raw.updated_at === 'number' ? raw.updated_at : typeof raw.updated_at === 'string' ? Date.parse(raw.updated_at) / 1000 : 0;
  return {
    ...raw,
    name,
    state: raw.state,
    model_id: typeof raw.model_id === 'string' ? raw.model_id : null,
    port: typeof raw.port === 'number' ? raw.port : null,
    updated_at: Number.isFinite(updated) ? updated : 0,
    message: typeof raw.message === 'string' ? raw.message : null,
  };
}
