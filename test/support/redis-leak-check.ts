import { afterAll, expect } from 'vitest';
import { keysUnder, trackedPrefixes } from './redis-prefix.js';

/**
 * Loaded before every test file (vitest `setupFiles`). Its afterAll is registered first, so
 * it runs last (hooks run as a stack): after the file's own cleanup, every prefix the file
 * made must be empty in the shared Redis. A test that leaves keys fails here, naming them.
 */
afterAll(async () => {
  const prefixes = [...trackedPrefixes()];
  trackedPrefixes().clear();
  const left: string[] = [];
  for (const prefix of prefixes) left.push(...(await keysUnder(prefix, 20)));
  expect(left, 'keys this test file left in the shared Redis').toEqual([]);
});
