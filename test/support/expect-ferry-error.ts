import { expect } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';

/** The FerryError a promise rejects with; fails the test if it resolves or rejects with anything else. */
export async function expectFerryError(p: Promise<unknown>): Promise<FerryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FerryError);
  return err as FerryError;
}
