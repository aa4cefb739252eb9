import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError, isFerryError } from '../errors/ferry-error.js';
import { acquireFileLock } from './file-lock.js';

export interface PartLockOptions {
  /**
   * An owner record whose heartbeat is older than this is taken over (another host died or was
   * cut off); the heartbeat is written every third of it. Use the job lock's duration.
   */
  staleMs: number;
  /** How long to wait for another runner to let go before giving the job back. */
  waitMs: number;
  signal?: AbortSignal;
  log?: (message: string) => void;
}

export interface PartLock {
  /** True while both locks are still ours: the flock child holds its lock and the owner record names us. */
  held(): Promise<boolean>;
  /** Fires when a lock is lost while held (the flock child died, the owner record was taken over). */
  readonly lost: AbortSignal;
  release(): Promise<void>;
}

/** Exit codes of the flock child: the lock is held by someone else / the lock file was replaced under us. */
const BUSY = 75;
const REPLACED = 76;
const CHECK_MS = 500;

/**
 * Takes the lock on one partial file, for whoever writes it: an exclusive flock(2) on
 * `<part>.lock` (workers on this host; the kernel drops it when the process dies) plus an owner
 * record `<part>.owner` with a heartbeat (workers on other hosts sharing the directory over NFS,
 * where flock may not reach; see file-lock.ts). A runner that finds either held waits up to
 * `waitMs`, then throws `pull.part_busy` (retryable: the job is given back), and never writes.
 *
 * Node has no flock, so util-linux `flock` holds it in a small child that keeps it until its
 * stdin closes (also when we die). The holder deletes the lock file before letting go; a waiter
 * that got the lock on a deleted file notices (the inode differs) and tries again, so two
 * runners can never both hold "the" lock. Without a `flock` command only the owner record is used.
 */
export async function acquirePartLock(partPath: string, opts: PartLockOptions): Promise<PartLock> {
  const deadline = Date.now() + opts.waitMs;
  let told = false;
  for (;;) {
    throwIfAborted(opts.signal);
    const flock = await tryFlock(`${partPath}.lock`);
    if (flock !== 'busy') {
      const owner = await tryOwnerRecord(`${partPath}.owner`, opts.staleMs);
      if (owner) return holdBoth(partPath, flock, owner, opts);
      await releaseFlock(flock);
    }
    if (Date.now() > deadline) {
      throw new FerryError('pull.part_busy', `another runner is writing ${partPath}; this job is given back to the queue`, {
        hint: 'it is retried after a while; the other runner stops within one job-lock period if it lost its job',
      });
    }
    if (!told) opts.log?.('the partial file is held by another runner: waiting for it to let go');
    told = true;
    await sleep(100 + Math.random() * 150, undefined, { signal: opts.signal }).catch(() => undefined);
  }
}

type Flock = ChildProcess | undefined;

/** A child holding the flock, `undefined` where there is no flock command, or 'busy'. */
async function tryFlock(lockFile: string): Promise<Flock | 'busy'> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const script = [
      'exec 9>>"$1" || exit 2',
      `flock -n 9 || exit ${BUSY}`,
      `[ "$(stat -L -c %d:%i /proc/self/fd/9)" = "$(stat -c %d:%i -- "$1" 2>/dev/null)" ] || exit ${REPLACED}`,
      'echo locked',
      'read -r _ || true',
      'rm -f -- "$1"',
    ].join('\n');
    const child = spawn('sh', ['-c', script, 'ferry-part-lock', lockFile], { stdio: ['pipe', 'pipe', 'ignore'] });
    const outcome = await new Promise<'locked' | number | 'no-flock'>((resolve) => {
      child.stdout!.once('data', () => resolve('locked'));
      child.once('error', () => resolve('no-flock'));
      child.once('exit', (code) => resolve(code ?? -1));
    });
    if (outcome === 'locked') return child;
    if (outcome === BUSY) return 'busy';
    if (outcome === REPLACED) continue;
    if (outcome === 127 || outcome === 'no-flock') return undefined; // no flock command: the owner record alone
    throw new FerryError('pull.failed', `could not lock ${lockFile} (flock exited ${outcome})`);
  }
  return 'busy';
}

async function releaseFlock(child: Flock): Promise<void> {
  if (!child || child.exitCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdin!.end();
  await exited;
}

interface OwnerRecord {
  release: () => Promise<void>;
  token: string;
}

async function tryOwnerRecord(lockPath: string, staleMs: number): Promise<OwnerRecord | undefined> {
  let release: () => Promise<void>;
  try {
    release = await acquireFileLock(lockPath, { staleMs, timeoutMs: 0 });
  } catch (err) {
    if (isFerryError(err) && err.code === 'registry.locked') return undefined;
    throw err;
  }
  const token = await ownerToken(lockPath);
  if (!token) {
    await release();
    return undefined;
  }
  return { release, token };
}

async function ownerToken(lockPath: string): Promise<string | undefined> {
  try {
    return (JSON.parse(await readFile(`${lockPath}/owner.json`, 'utf8')) as { token?: string }).token;
  } catch {
    return undefined;
  }
}

function holdBoth(partPath: string, flock: Flock, owner: OwnerRecord, opts: PartLockOptions): PartLock {
  const lost = new AbortController();
  let released = false;
  const held = async () => !released && (!flock || flock.exitCode === null) && (await ownerToken(`${partPath}.owner`)) === owner.token;
  flock?.once('exit', () => {
    if (!released) lost.abort('part-lock-lost');
  });
  const timer = setInterval(() => {
    void held().then((ok) => {
      if (!ok && !released) {
        opts.log?.(`lost the lock on ${partPath}`);
        lost.abort('part-lock-lost');
      }
    });
  }, Math.min(CHECK_MS, opts.staleMs / 4));
  timer.unref();
  return {
    held,
    lost: lost.signal,
    async release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      await owner.release();
      await releaseFlock(flock);
    },
  };
}

function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new FerryError('pull.cancelled', 'the pull was cancelled');
}
