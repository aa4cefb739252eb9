import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { findMount, parseMountInfo } from '../../src/bento/mount-info.js';
import { parseRegistryUrl } from '../../src/bento/registry-url.js';
import { FerryError } from '../../src/errors/ferry-error.js';
import { BentoService } from '../../src/services/bento-service.js';

const FIXTURES = new URL('../fixtures/', import.meta.url).pathname;
const LIMITS = { maxBytes: 1 << 30, maxEntries: 1000 };

let home: string;
beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'ferry-mount-'));
});
afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

describe('registry URLs', () => {
  it('parses file:// and nfs://server:/path, and refuses others', () => {
    expect(parseRegistryUrl('file:///srv/models/')).toEqual({ kind: 'file', path: '/srv/models' });
    expect(parseRegistryUrl('nfs://nas.lan:/export/models')).toEqual({ kind: 'nfs', server: 'nas.lan', exportPath: '/export/models' });
    expect(parseRegistryUrl('nfs://10.0.0.5:/')).toEqual({ kind: 'nfs', server: '10.0.0.5', exportPath: '/' });
    for (const bad of ['file://relative', 'nfs://server/export', 'http://x/y', 'nfs://:/x']) expect(() => parseRegistryUrl(bad)).toThrow(FerryError);
  });

  it('parses mountinfo, octal escapes included', () => {
    const text = '36 35 98:0 / /mnt/with\\040space rw,noatime master:1 - nfs4 nas:/export/a\\040b rw\n24 23 0:22 / /dev/shm rw - tmpfs tmpfs rw\n';
    expect(parseMountInfo(text)).toEqual([
      { mountPoint: '/mnt/with space', fsType: 'nfs4', source: 'nas:/export/a b' },
      { mountPoint: '/dev/shm', fsType: 'tmpfs', source: 'tmpfs' },
    ]);
  });
});

describe('nfs registries', () => {
  function service(mountPoint: string, mountBin: string): BentoService {
    return new BentoService({ registries: { shared: { url: 'nfs://nas.example:/export/models', mount_point: mountPoint } }, home, mountBin, limits: LIMITS });
  }

  it('a failed mount is an error naming the server and path, and nothing is written to the mount point', async () => {
    const mountPoint = join(home, 'mnt', 'shared');
    const bento = service(mountPoint, join(FIXTURES, 'mount-fails.sh'));
    const err = (await bento.listModels('shared').catch((e: unknown) => e)) as FerryError;
    expect(err).toBeInstanceOf(FerryError);
    expect(err.code).toBe('registry.mount_failed');
    expect(err.message).toContain('nas.example');
    expect(err.message).toContain('/export/models');
    expect(err.message).toContain('access denied by server');
    expect(await readdir(mountPoint)).toEqual([]);
    // An import aimed at the unmounted share fails the same way and still writes nothing there.
    const { Readable } = await import('node:stream');
    await expect(bento.importArchive('shared', Readable.from([Buffer.alloc(10)]))).rejects.toMatchObject({ code: 'registry.mount_failed' });
    expect(await readdir(mountPoint)).toEqual([]);
  });

  it('a mount program that exits 0 without mounting is caught by reading mountinfo', async () => {
    const mountPoint = join(home, 'mnt', 'shared');
    const err = (await service(mountPoint, join(FIXTURES, 'mount-lies.sh')).listModels('shared').catch((e: unknown) => e)) as FerryError;
    expect(err.code).toBe('registry.mount_failed');
    expect(err.message).toMatch(/not a mount point/);
    expect(await readdir(mountPoint)).toEqual([]);
  });

  it('reuses an existing mount without running mount', async () => {
    // /dev/shm is a mount point in any Linux container; the failing "mount" proves it was not called.
    const shm = await findMount('/dev/shm');
    if (!shm) return void console.warn('no /dev/shm mount here; reuse not testable');
    expect(await findMount(home)).toBeUndefined();
    const bento = service('/dev/shm', join(FIXTURES, 'mount-fails.sh'));
    await expect(bento.listModels('shared')).resolves.toBeInstanceOf(Array);
    await expect(stat('/dev/shm/models')).rejects.toThrow(); // listing wrote nothing either
  });
});
