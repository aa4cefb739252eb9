import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { acquireFileLock, withFileLock } from '../../src/stores/file-lock.js';

let dir: string;
let lock: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-lock-'));
  lock = join(dir, 'registry.toml.lock');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited (and, the test assumes, not been reused within the test). */
async function deadPid(): Promise<number> {
  const child = execa(process.execPath, ['-e', '0']);
  await child;
  return child.pid!;
}

async function plantLock(owner: { host: string; pid: number; token?: string }, ageMs = 0): Promise<void> {
  await mkdir(lock);
  await writeFile(join(lock, 'owner.json'), JSON.stringify({ token: 'planted', ...owner }));
  if (ageMs > 0) {
    const then = new Date(Date.now() - ageMs);
    await utimes(lock, then, then);
  }
}

describe('withFileLock', () => {
  it('lets one holder in at a time and releases on success and on error', async () => {
    let inside = 0;
    let maxInside = 0;
    let runs = 0;
    const work = async (fail: boolean) => {
      inside++;
      maxInside = Math.max(maxInside, inside);
      await sleep(2);
      runs++;
      inside--;
      if (fail) throw new Error('boom');
    };
    const results = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => withFileLock(lock, () => work(i % 5 === 0))));
    expect(maxInside).toBe(1);
    expect(runs).toBe(20);
    expect(results.filter((r) => r.status === 'rejected')).toHaveLength(4);
    expect(await readdir(dir)).toEqual([]); // released, no pending or released leftovers
  });

  it('takes over a lock left by a dead process on this host at once (no heartbeat wait)', async () => {
    await plantLock({ host: hostname(), pid: await deadPid() });
    // staleMs far beyond the timeout: only the dead-pid rule can let us in
    const release = await acquireFileLock(lock, { staleMs: 60_000, timeoutMs: 1_000 });
    await release();
    expect(await readdir(dir)).toEqual([]);
  });

  it('waits for a live holder on another host and times out with registry.locked', async () => {
    await plantLock({ host: 'some-other-host', pid: 1 });
    const err = await acquireFileLock(lock, { staleMs: 60_000, timeoutMs: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('registry.locked');
    expect(await readdir(lock)).toEqual(['owner.json']); // the other host's lock is untouched
  });

  it("breaks another host's lock only when its heartbeat is stale", async () => {
    await plantLock({ host: 'some-other-host', pid: 1 }, 5_000);
    const release = await acquireFileLock(lock, { staleMs: 1_000, timeoutMs: 1_000 });
    await release();
  });

  it('a lock directory without an owner file (foreign or damaged) is broken by age only', async () => {
    await mkdir(lock);
    await writeFile(join(lock, 'something-else'), '');
    await expect(acquireFileLock(lock, { staleMs: 60_000, timeoutMs: 100 })).rejects.toMatchObject({ code: 'registry.locked' });
    const then = new Date(Date.now() - 5_000);
    await utimes(lock, then, then);
    await (await acquireFileLock(lock, { staleMs: 1_000, timeoutMs: 1_000 }))();
  });

  it('the heartbeat keeps a long hold from looking stale', async () => {
    const order: string[] = [];
    const holder = withFileLock(
      lock,
      async () => {
        order.push('first in');
        await sleep(1_600); // longer than staleMs below; the heartbeat (every 500 ms) keeps it fresh
        order.push('first out');
      },
      { staleMs: 1_200 },
    );
    await sleep(50);
    // the holder's pid is alive (it is us), so only a stale heartbeat could let this in early
    const second = withFileLock(lock, async () => void order.push('second in'), { staleMs: 1_200, timeoutMs: 10_000 });
    await Promise.all([holder, second]);
    expect(order).toEqual(['first in', 'first out', 'second in']);
  });

  it('an empty directory at the lock path is taken at once (Ferry never leaves its lock empty)', async () => {
    await mkdir(lock);
    await (await acquireFileLock(lock, { staleMs: 60_000, timeoutMs: 100 }))();
  });

  it('sweeps prepared lock directories of dead processes', async () => {
    // one killed after writing its owner file, one killed right after mkdir (named by host tag and pid)
    const hostTag = createHash('sha256').update(hostname()).digest('hex').slice(0, 8);
    const pid = await deadPid();
    const withOwner = `${lock}.${hostTag}_${pid}_deadbeef.pending`;
    await mkdir(withOwner);
    await writeFile(join(withOwner, 'owner.json'), JSON.stringify({ host: hostname(), pid, token: 'deadbeef' }));
    await mkdir(`${lock}.${hostTag}_${pid}_cafe.pending`);
    // another host's fresh one is left alone
    await mkdir(`${lock}.00000000_${pid}_f00d.pending`);
    await withFileLock(lock, async () => undefined);
    expect(await readdir(dir)).toEqual([`registry.toml.lock.00000000_${pid}_f00d.pending`]);
    await rm(`${lock}.00000000_${pid}_f00d.pending`, { recursive: true });
    expect(await readdir(dir)).toEqual([]);
  });
});
