import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A temp directory on tmpfs when there is one. The multi-process registry tests do hundreds of
 * locked writes; each fsync costs ~10 ms on a shared VM disk and nothing on tmpfs, while the
 * properties under test (atomic rename, lock exclusion, crash leftovers) are the same on both.
 */
export function makeScratchDir(prefix: string): Promise<string> {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return mkdtemp(join(base, prefix));
}
