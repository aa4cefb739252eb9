import { FerryError } from '../errors/ferry-error.js';

/** hal0's slot states. A slot with no state file is `offline`. */
export const SLOT_STATES = ['offline', 'pulling', 'starting', 'warming', 'ready', 'serving', 'idle', 'unloading', 'error'] as const;
export type SlotState = (typeof SLOT_STATES)[number];

/**
 * The legal transitions. hal0 has such a table; this one is reconstructed from the lifecycle
 * hal0 documents (its exact table may differ in detail), and every row says why it exists:
 *
 * | from      | to                                     | why                                                    |
 * |-----------|----------------------------------------|--------------------------------------------------------|
 * | offline   | pulling, starting, warming             | swap to a missing model; start a backend; load a model |
 * | pulling   | warming, error, offline                | pull verified; pull failed; pull cancelled             |
 * | starting  | warming, error                         | backend process up; it exited                          |
 * | warming   | ready, error, unloading                | healthy; never healthy; unload while loading           |
 * | ready     | serving, idle, unloading, error        | request in; idle timer; assign/stop; backend died      |
 * | serving   | ready, idle, unloading, error          | request done; idle; assign/stop; backend died          |
 * | idle      | serving, ready, unloading, error       | request in; touched; idle unload; backend died         |
 * | unloading | offline, warming, error                | stopped; restart with a new model (assign); stop failed|
 * | error     | offline, unloading, warming, pulling   | reset; stop what is left; retry load; retry swap       |
 *
 * A state never transitions to itself: progress within a state is an update, not a
 * transition. Requests are routed only to ready, serving and idle slots.
 */
export const SLOT_TRANSITIONS: Readonly<Record<SlotState, readonly SlotState[]>> = {
  offline: ['pulling', 'starting', 'warming'],
  pulling: ['warming', 'error', 'offline'],
  starting: ['warming', 'error'],
  warming: ['ready', 'error', 'unloading'],
  ready: ['serving', 'idle', 'unloading', 'error'],
  serving: ['ready', 'idle', 'unloading', 'error'],
  idle: ['serving', 'ready', 'unloading', 'error'],
  unloading: ['offline', 'warming', 'error'],
  error: ['offline', 'unloading', 'warming', 'pulling'],
};

/** States in which a slot's backend answers requests. */
export const SERVABLE_STATES: readonly SlotState[] = ['ready', 'serving', 'idle'];

export function isSlotState(value: unknown): value is SlotState {
  return typeof value === 'string' && (SLOT_STATES as readonly string[]).includes(value);
}

export function canTransition(from: SlotState, to: SlotState): boolean {
  return SLOT_TRANSITIONS[from].includes(to);
}

/** Throws `slot.invalid_transition`: an illegal transition is a bug in the caller, never data. */
export function assertTransition(slot: string, from: SlotState, to: SlotState): void {
  if (!isSlotState(to)) throw new FerryError('slot.invalid', `unknown slot state ${JSON.stringify(to)}`);
  if (!canTransition(from, to)) {
    throw new FerryError('slot.invalid_transition', `slot "${slot}" cannot go from ${from} to ${to}`, {
      details: { slot, from, to, allowed: [...SLOT_TRANSITIONS[from]] },
    });
  }
}

export function isServable(state: SlotState): boolean {
  return SERVABLE_STATES.includes(state);
}
