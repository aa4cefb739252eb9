import { execa } from 'execa';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { RegistryStore } from '../../src/registry/registry-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-hal0-lock-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

it("waits while hal0 holds its flock on registry.toml.lock, and leaves hal0's lock file usable", async () => {
  const store = new RegistryStore(dir);
  await store.mutate((d) => d.set({ id: 'first', path: '/m/first.gguf' }));
  // hal0 (Python) takes fcntl.flock on the regular file registry.toml.lock while it writes.
  const hal0 = execa('python3', ['-c', `
import fcntl, sys, time
f = open(sys.argv[1], 'a')
fcntl.flock(f, fcntl.LOCK_EX)
print('held', flush=True)
time.sleep(1.5)
with open(sys.argv[2], 'a') as r: r.write('\\n[models."from-hal0"]\\npath = "/m/h.gguf"\\n')
fcntl.flock(f, fcntl.LOCK_UN)
`, join(dir, 'registry.toml.lock'), join(dir, 'registry.toml')], { buffer: false });
  await new Promise<void>((r) => hal0.stdout!.once('data', () => r()));
  const t0 = Date.now();
  await store.mutate((d) => d.set({ id: 'second', path: '/m/second.gguf' }));
  expect(Date.now() - t0).toBeGreaterThan(1000); // it waited for hal0
  await hal0;
  const text = await readFile(join(dir, 'registry.toml'), 'utf8');
  // Ferry re-read under the lock, so hal0's row survived Ferry's write.
  expect(text).toMatch(/\[models\."?from-hal0"?\]/);
  expect(text).toContain('second');
  expect((await stat(join(dir, 'registry.toml.lock'))).isFile()).toBe(true);
});
