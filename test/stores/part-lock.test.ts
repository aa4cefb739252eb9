import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquirePartLock } from '../../src/stores/part-lock.js';

describe('acquirePartLock: one runner per partial file', () => {
  let dir: string;
  let part: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-part-lock-'));
    part = join(dir, 'm--f.gguf.part');
    await writeFile(part, 'partial bytes');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it('a second runner waits, then gives the job back with pull.part_busy; after release it gets the lock', async () => {
    const first = await acquirePartLock(part, { staleMs: 5000, waitMs: 0 });
    expect(await first.held()).toBe(true);
    const t0 = Date.now();
    await expect(acquirePartLock(part, { staleMs: 5000, waitMs: 400 })).rejects.toMatchObject({ code: 'pull.part_busy' });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
    // Released while a second runner waits: it gets the lock.
    const waiting = acquirePartLock(part, { staleMs: 5000, waitMs: 5000 });
    await new Promise((r) => setTimeout(r, 300));
    await first.release();
    const second = await waiting;
    expect(await second.held()).toBe(true);
    expect(await first.held()).toBe(false);
    await second.release();
    // Nothing is left beside the partial once released.
    expect(await readdir(dir)).toEqual(['m--f.gguf.part']);
  });

  it('the flock keeps out another process on this host, and is dropped when its holder dies', async () => {
    // Another process holds the flock on the same lock file (as a second worker process would).
    const other = execa('sh', ['-c', 'exec 9>>"$1"; flock -x 9; echo locked; exec sleep 30', 'holder', `${part}.lock`], { buffer: false });
    await new Promise<void>((r) => other.stdout!.once('data', () => r()));
    await expect(acquirePartLock(part, { staleMs: 5000, waitMs: 300 })).rejects.toMatchObject({ code: 'pull.part_busy' });
    other.kill('SIGKILL');
    await other.catch(() => undefined);
    const t0 = Date.now();
    const lock = await acquirePartLock(part, { staleMs: 5000, waitMs: 2000 });
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(await lock.held()).toBe(true);
    await lock.release();
  });

  it('an owner record with a fresh heartbeat keeps a runner out even without the flock (another host over NFS)', async () => {
    const first = await acquirePartLock(part, { staleMs: 5000, waitMs: 0 });
    // Simulate a holder on another host: its owner record stays, its flock is not visible here.
    const { rename, readFile, mkdir } = await import('node:fs/promises');
    const owner = await readFile(join(`${part}.owner`, 'owner.json'), 'utf8');
    await first.release();
    await mkdir(`${part}.owner`);
    await writeFile(join(`${part}.owner`, 'owner.json'), JSON.stringify({ ...JSON.parse(owner), host: 'other-host', token: 'x' }));
    await expect(acquirePartLock(part, { staleMs: 5000, waitMs: 300 })).rejects.toMatchObject({ code: 'pull.part_busy' });
    // Its heartbeat goes stale: taken over.
    const { utimes } = await import('node:fs/promises');
    const old = new Date(Date.now() - 10_000);
    await utimes(`${part}.owner`, old, old);
    const lock = await acquirePartLock(part, { staleMs: 5000, waitMs: 2000 });
    expect(await lock.held()).toBe(true);
    await lock.release();
    void rename;
  });

  it('signals `lost` when the lock is taken away while held', async () => {
    const lock = await acquirePartLock(part, { staleMs: 2000, waitMs: 0 });
    const { rename } = await import('node:fs/promises');
    await rename(`${part}.owner`, `${part}.owner.stolen`); // another host broke it as stale
    await new Promise((r) => setTimeout(r, 800));
    expect(lock.lost.aborted).toBe(true);
    expect(await lock.held()).toBe(false);
    await lock.release();
  });
});
