import { createInterface } from 'node:readline';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { realisticEntry } from './realistic-entry.js';

/**
 * A registry writer in its own process, for the concurrency and crash tests.
 *   add <dir> <prefix> <count>: waits for a line on stdin (so all writers start together),
 *     adds <count> small rows one locked write at a time, prints "done".
 *   loop <dir> <prefix>: prints "ready", then adds rows <prefix>-0, -1, ... forever,
 *     printing "committed <n>" after each write returns (stdout to a pipe is synchronous on
 *     Linux, so a line printed before a SIGKILL is never lost).
 */
async function main(): Promise<void> {
  const [mode, dir, prefix, count] = process.argv.slice(2);
  const store = new RegistryStore(dir);
  const row = (n: number) => ({ ...realisticEntry(n), id: `${prefix}-${n}` });
  if (mode === 'add') {
    await firstLine();
    for (let n = 0; n < Number(count); n++) {
      await store.mutate((draft) => draft.set({ id: `${prefix}-${n}`, path: `/models/${prefix}/${n}.gguf`, size_bytes: n, sha256: '0'.repeat(64) }));
    }
    process.stdout.write('done\n');
    return;
  }
  if (mode === 'loop') {
    await store.read();
    process.stdout.write('ready\n');
    for (let n = 0; ; n++) {
      await store.mutate((draft) => draft.set(row(n)));
      process.stdout.write(`committed ${n}\n`);
    }
  }
  throw new Error(`unknown mode ${mode}`);
}

function firstLine(): Promise<void> {
  return new Promise((resolve) => {
    const rl = createInterface({ input: process.stdin });
    rl.once('line', () => {
      rl.close();
      process.stdin.destroy(); // an open stdin would keep this process alive after its work
      resolve();
    });
  });
}

await main();
