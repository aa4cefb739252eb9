import { FerryError } from '../errors/ferry-error.js';

let flockMissing = false;

/**
 * hal0 serialises its registry writers with flock(2) on a regular file `registry.toml.lock`.
 * Node has no flock, so the util-linux `flock` command holds it for us: it takes the lock,
 * says so, and keeps it until its stdin closes (which also happens if we die). Ferry's own
 * cross-host lock is taken first; this one keeps hal0 itself out while Ferry writes.
 * Without a `flock` command the step is skipped (only hal0 on this machine could notice).
 */
export async function withHal0Flock<T>(lockFile: string, fn: () => Promise<T>, timeoutS = 30): Promise<T> {
  if (flockMissing) return fn();
  const { execa } = await import('execa'); // lazily: `ferry model list` never writes
  const child = execa('flock', ['--exclusive', '--timeout', String(timeoutS), lockFile, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdin: 'pipe',
    stdout: 'pipe',
    stderr: 'pipe',
    reject: false,
    buffer: false,
  });
  const locked = await new Promise<boolean>((resolve) => {
    child.stdout!.once('data', () => resolve(true));
    void child.then(() => resolve(false));
  });
  if (!locked) {
    const result = await child;
    if ((result as { code?: string }).code === 'ENOENT') {
      flockMissing = true;
      return fn();
    }
    throw new FerryError('registry.locked', `could not take hal0's lock ${lockFile} within ${timeoutS} s (exit ${result.exitCode})`, { hint: 'is hal0 writing the registry?' });
  }
  try {
    return await fn();
  } finally {
    child.stdin!.end();
    await child;
  }
}
