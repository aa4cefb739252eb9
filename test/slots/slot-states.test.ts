import { describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { assertTransition, canTransition, isServable, SLOT_STATES, SLOT_TRANSITIONS, type SlotState } from '../../src/slots/slot-states.js';

/** The documented table, written out again independently so an edit to one is caught by the other. */
const EXPECTED: Record<SlotState, SlotState[]> = {
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

describe('slot state transitions', () => {
  it('has exactly hal0\'s nine states', () => {
    expect([...SLOT_STATES].sort()).toEqual(['error', 'idle', 'offline', 'pulling', 'ready', 'serving', 'starting', 'unloading', 'warming']);
    expect(Object.keys(SLOT_TRANSITIONS).sort()).toEqual([...SLOT_STATES].sort());
  });

  it('walks every (from, to) pair: legal ones pass, every other one is refused', () => {
    let legal = 0;
    for (const from of SLOT_STATES) {
      for (const to of SLOT_STATES) {
        const allowed = EXPECTED[from].includes(to);
        expect(canTransition(from, to), `${from} -> ${to}`).toBe(allowed);
        if (allowed) {
          expect(() => assertTransition('s', from, to)).not.toThrow();
          legal++;
        } else {
          let err: unknown;
          try {
            assertTransition('s', from, to);
          } catch (e) {
            err = e;
          }
          expect(err, `${from} -> ${to} must be refused`).toBeInstanceOf(FerryError);
          expect((err as FerryError).code).toBe('slot.invalid_transition');
          expect((err as FerryError).details).toMatchObject({ from, to });
        }
      }
    }
    expect(legal).toBe(Object.values(EXPECTED).flat().length);
  });

  it('never lets a state go to itself', () => {
    for (const s of SLOT_STATES) expect(canTransition(s, s)).toBe(false);
  });

  it('reaches ready from offline, and the issue\'s assign and swap paths are legal', () => {
    const walk = (path: SlotState[]) => path.slice(1).every((to, i) => canTransition(path[i], to));
    expect(walk(['offline', 'warming', 'ready'])).toBe(true);
    expect(walk(['ready', 'unloading', 'warming', 'ready'])).toBe(true); // assign
    expect(walk(['offline', 'pulling', 'warming', 'ready'])).toBe(true); // swap to a missing model
    expect(walk(['ready', 'unloading', 'offline', 'pulling', 'warming', 'ready'])).toBe(true);
    expect(walk(['warming', 'error', 'warming', 'ready'])).toBe(true); // retry
    expect(walk(['offline', 'ready'])).toBe(false);
    expect(walk(['pulling', 'ready'])).toBe(false); // a pull must be verified and warmed first
  });

  it('routes requests only to ready, serving and idle slots', () => {
    expect(SLOT_STATES.filter(isServable)).toEqual(['ready', 'serving', 'idle']);
  });
});
