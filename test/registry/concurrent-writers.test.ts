import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { parse as parseToml } from 'smol-toml';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { makeScratchDir } from '../support/scratch-dir.js';

const WRITER = fileURLToPath(new URL('../../dist/test/support/registry-writer.js', import.meta.url));
const WRITERS = 8;
const EACH = 50;

let dir: string;
beforeEach(async () => {
  dir = await makeScratchDir('ferry-concurrent-');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it(`${WRITERS} processes adding ${EACH} rows each at once end with ${WRITERS * EACH} rows; the file parses after every write`, async () => {
  const file = join(dir, 'registry.toml');
  const children = Array.from({ length: WRITERS }, (_, w) => execa(process.execPath, [WRITER, 'add', dir, `w${w}`, String(EACH)], { stdin: 'pipe' }));
  // Read the file continuously while they write: every version a reader can open must parse.
  let reads = 0;
  let failures = 0;
  let running = true;
  const seenVersions = new Set<number>();
  const reader = (async () => {
    while (running) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch {
        continue; // not created yet
      }
      reads++;
      try {
        const doc = parseToml(text) as { models?: Record<string, unknown> };
        seenVersions.add(Object.keys(doc.models ?? {}).length);
      } catch {
        failures++;
      }
      await sleep(1); // leave the CPU to the writers
    }
  })();
  for (const child of children) child.stdin!.end('go\n');
  const results = await Promise.all(children);
  running = false;
  await reader;

  for (const r of results) expect(r.stdout.trim()).toBe('done');
  expect(failures).toBe(0);
  expect(reads).toBeGreaterThan(10);
  expect(seenVersions.size).toBeGreaterThan(5); // the reader really watched the file grow
  const models = await new RegistryStore(dir).list();
  expect(models).toHaveLength(WRITERS * EACH);
  for (let w = 0; w < WRITERS; w++) for (let n = 0; n < EACH; n++) expect(models.some((m) => m.id === `w${w}-${n}`)).toBe(true);
  // nothing left behind: no lock, no temp files
  expect((await readdir(dir)).sort()).toEqual(['.registry.toml.cache.json', 'registry.toml', 'registry.toml.lock']); // + hal0's flock file
});
