import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { hostname } from 'node:os';
import { createHash, randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../errors/ferry-error.js';
import { isProcessAlive } from '../util/process-alive.js';

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
/** Names a prepared lock directory's host, so a sweep can tell our dead processes' debris without reading inside. */
const HOST_TAG = createHash('sha256').update(HOST).digest('hex').slice(0, 8);
const PENDING_NAME = /\.([0-9a-f]{8})_(\d+)_[0-9a-f]+\.pending$/;

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
  // Prepared once, then each attempt is a single rename: cheap enough to poll often.
  const pending = await preparePending(lockPath, owner);
  let delay = 1;
  try {
    for (;;) {
      if (await tryRenameIntoPlace(pending, lockPath)) {
        await sweepDeadPending(lockPath, staleMs);
        return startHeartbeat(lockPath, owner, staleMs);
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
      delay = Math.min(delay * 2, 16);
    }
  } finally {
    await rm(pending, { recursive: true, force: true }); // gone already if it became the lock
  }
}

/**
 * The lock directory appears with its owner file already inside: it is prepared under a
 * unique name and renamed into place (rename onto an existing, non-empty directory fails,
 * locally and on NFS). A plain mkdir followed by writing the owner would leave an ownerless
 * lock if the process died in between, which only the heartbeat timeout could break.
 * (The one catch: rename replaces an *empty* directory. Ferry's lock is never empty, since
 * release and takeover move it away whole, so an empty one is debris and is taken over.)
 */
async function preparePending(lockPath: string, owner: LockOwner): Promise<string> {
  const pending = `${lockPath}.${HOST_TAG}_${owner.pid}_${owner.token}.pending`;
  await mkdir(pending);
  await writeFile(`${pending}/owner.json`, JSON.stringify(owner));
  return pending;
}

async function tryRenameIntoPlace(pending: string, lockPath: string): Promise<boolean> {
  try {
    await rename(pending, lockPath);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOTDIR: a plain file sits there (hal0 flocks a regular `registry.toml.lock`); treat it as held.
    if (code !== 'ENOTEMPTY' && code !== 'EEXIST' && code !== 'ENOTDIR') throw err;
    return false;
  }
}

function startHeartbeat(lockPath: string, owner: LockOwner, staleMs: number): () => Promise<void> {
  // Touch the lock well within the stale period so long writes are never mistaken for a crash.
  const timer = setInterval(() => {
    const now = new Date();
    utimes(lockPath, now, now).catch(() => undefined);
  }, Math.max(500, staleMs / 3));
  timer.unref();
  return async () => {
    clearInterval(timer);
    await releaseLock(lockPath, owner);
  };
}

/**
 * Move the lock away in one rename, then delete it. Removing it in place (unlink the owner
 * file, then rmdir) would leave an empty directory for a moment, and renaming a prepared
 * lock onto an empty directory succeeds: a second owner would appear and then be deleted.
 * A lock that is no longer ours (broken as stale by another host) is left alone.
 */
async function releaseLock(lockPath: string, owner: LockOwner): Promise<void> {
  const current = await readOwner(lockPath);
  if (current && current.token !== owner.token) return;
  const grave = `${lockPath}.released-${owner.token}`;
  try {
    await rename(lockPath, grave);
  } catch {
    return;
  }
  await rm(grave, { recursive: true, force: true });
}

async function readOwner(dir: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(`${dir}/owner.json`, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

/** Prepared lock directories of processes that died before renaming them into place. */
async function sweepDeadPending(lockPath: string, staleMs: number): Promise<void> {
  const dir = dirname(lockPath);
  const prefix = `${basename(lockPath)}.`;
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !(name.endsWith('.pending') || name.includes('.released-') || name.includes('.stale-'))) continue;
    const path = join(dir, name);
    // Renamed-away locks are garbage by construction (only one rename of a lock succeeds), even
    // half-removed ones whose owner file is already gone.
    if (!name.endsWith('.pending')) {
      await rm(path, { recursive: true, force: true });
      continue;
    }
    // A prepared directory may have no owner file yet (its process died right after mkdir): its name says who made it.
    const named = PENDING_NAME.exec(name);
    const owner = named ? { host: named[1] === HOST_TAG ? HOST : '', pid: Number(named[2]) } : await readOwner(path);
    const dead = (owner !== undefined && owner.host === HOST && !isProcessAlive(owner.pid)) || (await olderThan(path, staleMs));
    if (dead) await rm(path, { recursive: true, force: true });
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return false;
  }
}

async function isStale(lockPath: string, staleMs: number): Promise<boolean> {
  // Ferry's locks always hold an owner file; one without is foreign or damaged: trust only its age.
  const owner = await readOwner(lockPath);
  if (owner && owner.host === HOST && !isProcessAlive(owner.pid)) return true;
  try {
    const info = await stat(lockPath);
    return Date.now() - info.mtimeMs > staleMs;
  } catch {
    return false; // released meanwhile: the next mkdir will tell
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
