import { mkdir, readFile, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../errors/ferry-error.js';

export interface FileLockOptions {
  /**
   * A lock whose heartbeat is older than this is taken over.
   * @defaultValue 10000
   */
  staleMs?: number;
  /**
   * Give up after waiting this long.
   * @defaultValue 30000
   */
  timeoutMs?: number;
}

interface LockOwner {
  host: string;
  pid: number;
  token: string;
}

const HOST = hostname();

/**
 * A lock held as a directory, because mkdir is atomic on local disks and on NFS alike
 * (O_EXCL files and flock are not reliable over NFS). Unlike proper-lockfile, a lock
 * left by a crashed process on this host is taken over at once (its pid is gone);
 * a lock from another host is taken over only when its heartbeat goes stale.
 */
export async function withFileLock<T>(lockPath: string, fn: () => Promise<T>, options: FileLockOptions = {}): Promise<T> {
  const release = await acquireFileLock(lockPath, options);
  try {
    return await fn();
  } finally {
    await release();
  }
}

export async function acquireFileLock(lockPath: string, options: FileLockOptions = {}): Promise<() => Promise<void>> {
  const staleMs = options.staleMs ?? 10_000;
  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  const owner: LockOwner = { host: HOST, pid: process.pid, token: randomBytes(8).toString('hex') };
  let delay = 2;
  for (;;) {
    try {
      await mkdir(lockPath);
      await writeFile(`${lockPath}/owner.json`, JSON.stringify(owner));
      return startHeartbeat(lockPath, staleMs);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await isStale(lockPath, staleMs)) {
      await breakLock(lockPath);
      continue;
    }
    if (Date.now() > deadline) {
      throw new FerryError('registry.locked', `timed out waiting for the lock ${lockPath}`, {
        hint: 'another Ferry process holds it; if none is running, remove the directory',
      });
    }
    await sleep(delay + Math.random() * delay);
    delay = Math.min(delay * 2, 50);
  }
}

function startHeartbeat(lockPath: string, staleMs: number): () => Promise<void> {
  // Touch the lock well within the stale period so long writes are never mistaken for a crash.
  const timer = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(500, staleMs / 3));
  timer.unref();
  return async () => {
    clearInterval(timer);
    await rm(lockPath, { recursive: true, force: true });
  };
}

async function isStale(lockPath: string, staleMs: number): Promise<boolean> {
  let owner: LockOwner | undefined;
  try {
    owner = JSON.parse(await readFile(`${lockPath}/owner.json`, 'utf8')) as LockOwner;
  } catch {
    // No owner file yet: either it is being written right now or its writer died in between.
  }
  if (owner && owner.host === HOST && !isAlive(owner.pid)) return true;
  try {
    const info = await stat(lockPath);
    return Date.now() - info.mtimeMs > staleMs;
  } catch {
    return false; // released meanwhile: the next mkdir will tell
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Rename first so that two processes breaking the same stale lock cannot remove a lock
 * that a third process has just taken: only one rename of the stale directory succeeds.
 */
async function breakLock(lockPath: string): Promise<void> {
  const grave = `${lockPath}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(lockPath, grave);
  } catch {
    return;
  }
  await rm(grave, { recursive: true, force: true });
}
