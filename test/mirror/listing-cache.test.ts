import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeldFiles } from '../../src/mirror/held-files.js';
import { MirrorService } from '../../src/mirror/mirror-service.js';
import { MirrorStore } from '../../src/mirror/mirror-store.js';
import { UpstreamHub } from '../../src/mirror/upstream-hub.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';

const REPO = 'acme/moving';
const A = 'a'.repeat(40);
const B = 'b'.repeat(40);

describe('listing cache: a commit forever, a branch bound to one commit for mirror_ref_ttl_s', () => {
  let hub: FakeHub;
  let dir: string;
  const service = (refTtlMs: number) =>
    new MirrorService({ upstream: new UpstreamHub(hub.url), store: new MirrorStore(dir), held: new HeldFiles(new RegistryStore(join(dir, 'registry'))), offline: false, refTtlMs });
  beforeAll(async () => {
    hub = await startFakeHub();
    dir = await mkdtemp(join(tmpdir(), 'ferry-mirror-cache-'));
  });
  afterAll(async () => {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps main on its first commit within the TTL, moves after it, and serves an old commit from the cache', async () => {
    hub.addRepo({ id: REPO, revision: A, files: [{ path: 'old.txt', content: Buffer.from('old') }] });
    const bound = service(60_000);
    expect((await bound.commitFor(REPO, 'main')).sha).toBe(A);
    hub.addRepo({ id: REPO, revision: B, files: [{ path: 'new.txt', content: Buffer.from('new') }] });
    const page = await bound.tree(REPO, 'main', { path: '', recursive: true });
    expect(page.commit).toBe(A);
    expect(page.entries.map((e) => e.path)).toEqual(['old.txt']);
    // A restarted API reads the binding from disk and keeps it too.
    expect((await service(60_000).commitFor(REPO, 'main')).sha).toBe(A);
    // TTL over: main moves to B.
    expect((await service(0).commitFor(REPO, 'main')).sha).toBe(B);
    // Commit A is gone upstream, but its listing is kept forever and answered without asking upstream.
    const before = hub.log.length;
    expect((await service(0).tree(REPO, A, { path: '', recursive: true })).entries.map((e) => e.path)).toEqual(['old.txt']);
    expect(hub.log.slice(before)).toEqual([]);
  });

  it('offline, what was never listed is 504 mirror.not_cached, and upstream is not asked', async () => {
    const offline = new MirrorService({ upstream: new UpstreamHub(hub.url), store: new MirrorStore(dir), held: new HeldFiles(new RegistryStore(join(dir, 'registry'))), offline: true, refTtlMs: 0 });
    const before = hub.log.length;
    await expect(offline.commitFor('acme/other', 'main')).rejects.toMatchObject({ code: 'mirror.not_cached' });
    expect((await offline.commitFor(REPO, 'main')).sha).toBe(B);
    expect(hub.log.slice(before)).toEqual([]);
  });
});
