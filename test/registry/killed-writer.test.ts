import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { makeScratchDir } from '../support/scratch-dir.js';
import { realisticEntry } from '../support/realistic-entry.js';

const WRITER = fileURLToPath(new URL('../../dist/test/support/registry-writer.js', import.meta.url));
const KILLS = 50;
const BASE_ROWS = 300; // enough that a write takes a few ms, so kills land inside it

let dir: string;
beforeAll(async () => {
  dir = await makeScratchDir('ferry-killed-');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function ids(text: string): Set<string> {
  return new Set(Object.keys((parseToml(text) as { models: Record<string, unknown> }).models));
}

it(`a writer killed with SIGKILL ${KILLS} times never leaves a torn registry, and the next writer cleans up`, async () => {
  const file = join(dir, 'registry.toml');
  const store = new RegistryStore(dir);
  await store.mutate((draft) => {
    for (let i = 0; i < BASE_ROWS; i++) draft.set(realisticEntry(i));
  });
  let expected = ids(await readFile(file, 'utf8'));
  let leftLock = 0;
  let leftTemp = 0;
  let inFlightLanded = 0;

  for (let round = 0; round < KILLS; round++) {
    const prefix = `k${round}`;
    const child = execa(process.execPath, [WRITER, 'loop', dir, prefix], { reject: false, buffer: true });
    // Wait until it is writing, then kill it at a random moment of its write loop.
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    await sleep(Math.random() * 40);
    child.kill('SIGKILL');
    const result = await child;
    expect(result.signal).toBe('SIGKILL');

    const committed = result.stdout.split('\n').filter((l) => l.startsWith('committed ')).length;
    const names = await readdir(dir);
    if (names.includes('.registry.toml.ferry-lock')) leftLock++;
    if (names.some((n) => n.startsWith('.registry.toml.') && n.endsWith('.tmp'))) leftTemp++;

    // The file parses, and holds the old state plus every committed row, plus at most the one in flight.
    const now = ids(await readFile(file, 'utf8'));
    for (let n = 0; n < committed; n++) expected.add(`${prefix}-${n}`);
    const extra = [...now].filter((id) => !expected.has(id));
    const missing = [...expected].filter((id) => !now.has(id));
    expect(missing).toEqual([]);
    expect(extra.length === 0 || (extra.length === 1 && extra[0] === `${prefix}-${committed}`)).toBe(true);
    if (extra.length === 1) inFlightLanded++;
    expected = now;
  }

  // The next write (lock possibly left by a dead pid: taken over at once) removes leftover temp files.
  const release = Date.now();
  await store.mutate((draft) => draft.set({ id: 'after-the-storm', path: '/m/x' }));
  await store.flush();
  expect(Date.now() - release).toBeLessThan(5_000); // far below the 10 s heartbeat timeout
  const names = await readdir(dir);
  // hal0's flock file stays, as hal0 leaves it; Ferry's lock directory and temp files do not.
  expect(names.filter((n) => n.endsWith(".tmp") || n.includes("ferry-lock") || n.endsWith(".pending")), names.join(" ")).toEqual([]);
  expect(ids(await readFile(file, 'utf8'))).toEqual(new Set([...expected, 'after-the-storm']));
  // The kills did land inside writes, not only between them.
  console.log(`kills: ${KILLS}; lock left behind ${leftLock}, temp file left ${leftTemp}, in-flight row landed ${inFlightLanded}`);
  expect(leftLock + leftTemp).toBeGreaterThan(0);
});
