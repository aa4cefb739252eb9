import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { SlotStateStore } from '../../src/slots/slot-state-store.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-state-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('SlotStateStore', () => {
  it('starts offline and records transitions in slots/<name>/state.json', async () => {
    const store = new SlotStateStore(dir);
    expect(await store.read('primary')).toMatchObject({ name: 'primary', state: 'offline', model_id: null, port: null, message: null });
    const before = Date.now() / 1000;
    await store.transition('primary', 'warming', { model_id: 'qwen3-4b', port: 8081 });
    const ready = await store.transition('primary', 'ready');
    expect(ready).toMatchObject({ state: 'ready', model_id: 'qwen3-4b', port: 8081, message: null });
    expect(ready.updated_at).toBeGreaterThanOrEqual(before - 1);
    const onDisk = JSON.parse(await readFile(join(dir, 'primary', 'state.json'), 'utf8'));
    expect(onDisk).toMatchObject({ name: 'primary', state: 'ready', model_id: 'qwen3-4b', port: 8081, message: null });
    expect(await readdir(join(dir, 'primary'))).toEqual(['state.json']);
  });

  it('refuses an illegal transition and leaves the file as it was', async () => {
    const store = new SlotStateStore(dir);
    await store.transition('primary', 'pulling', { model_id: 'm', message: '10%' });
    const err = await store.transition('primary', 'ready').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('slot.invalid_transition');
    expect(await store.read('primary')).toMatchObject({ state: 'pulling', message: '10%' });
  });

  it('clears an old message on a transition but keeps it on an update', async () => {
    const store = new SlotStateStore(dir);
    await store.transition('primary', 'warming');
    await store.transition('primary', 'error', { message: 'backend exited with code 3' });
    expect((await store.read('primary')).message).toBe('backend exited with code 3');
    await store.transition('primary', 'warming');
    expect((await store.read('primary')).message).toBeNull();
    await store.update('primary', { message: 'loading 50%' });
    expect(await store.read('primary')).toMatchObject({ state: 'warming', message: 'loading 50%' });
  });

  it('lets exactly one of many concurrent writers move a slot out of a state', async () => {
    // Separate store objects share nothing in memory: only the lock directory serialises them,
    // the same way it serialises separate processes.
    const attempts = Array.from({ length: 8 }, (_, i) => new SlotStateStore(dir).transition('primary', 'pulling', { model_id: `m${i}` }));
    const results = await Promise.allSettled(attempts);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r.reason as FerryError).code)).toEqual(Array(7).fill('slot.invalid_transition'));
    const winner = (won[0] as PromiseFulfilledResult<{ model_id: string }>).value.model_id;
    expect((await new SlotStateStore(dir).read('primary')).model_id).toBe(winner);
  });

  it('reads hal0\'s flat <name>.state.json and refuses a corrupt state file', async () => {
    await writeFile(join(dir, 'embed.state.json'), JSON.stringify({ name: 'embed', state: 'ready', model_id: 'nomic', port: 8082, updated_at: 1700000000.5, message: null }));
    const store = new SlotStateStore(dir);
    expect(await store.read('embed')).toMatchObject({ state: 'ready', model_id: 'nomic', port: 8082, updated_at: 1700000000.5 });
    await mkdir(join(dir, 'broken'));
    await writeFile(join(dir, 'broken', 'state.json'), '{"state": "dancing"}');
    await expect(store.read('broken')).rejects.toMatchObject({ code: 'slot.invalid' });
    await writeFile(join(dir, 'broken', 'state.json'), '{not json');
    await expect(store.read('broken')).rejects.toMatchObject({ code: 'slot.invalid' });
    await expect(store.read('../x')).rejects.toMatchObject({ code: 'slot.invalid' });
  });
});
