import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { isProcessAlive } from '../util/process-alive.js';

/**
 * Stops a backend another worker process on this host started (its pid is in state.json):
 * SIGTERM, then SIGKILL after `graceMs`. Before signalling, /proc/<pid>/cmdline must still
 * name `program`, so a pid the kernel has since reused for something else is left alone.
 * Returns false when there was nothing (of ours) to stop.
 */
export async function stopPid(pid: number, program: string | undefined, graceMs: number): Promise<boolean> {
  if (!isProcessAlive(pid)) return false;
  if (program) {
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
    if (cmdline !== undefined && !cmdline.split('\0').some((arg) => arg === program || basename(arg) === basename(program))) return false;
  }
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid)) return true;
    await sleep(50);
  }
  signal(pid, 'SIGKILL');
  for (let i = 0; i < 250 && isProcessAlive(pid); i++) await sleep(20);
  return true;
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
}

