import { mkdir } from 'node:fs/promises';
import type * as Execa from 'execa';
import { lazyModule } from '../util/lazy-module.js';

const loadExeca = lazyModule<typeof Execa>('execa');
import { FerryError } from '../errors/ferry-error.js';
import { findMount } from './mount-info.js';
import { nfsDevice } from './registry-url.js';

export interface EnsureNfsMountOptions {
  server: string;
  exportPath: string;
  /** Local directory the share is mounted on; created if missing, never written into. */
  mountPoint: string;
  /**
   * The mount program (`mount_bin` in config.toml), run as `<bin> -t nfs server:/path <mountPoint>`.
   * @defaultValue "mount"
   */
  mountBin?: string;
  /**
   * Give up on a mount that hangs (an unreachable server with a hard mount) after this long.
   * @defaultValue 60000
   */
  timeoutMs?: number;
}

/**
 * Makes sure the share is mounted at `mountPoint`: an existing mount there is reused; otherwise
 * `mount -t nfs` runs once. A failed mount is an error naming the server and path, raised before
 * anything could be written to the (then empty, local) mount point.
 */
export async function ensureNfsMount(options: EnsureNfsMountOptions): Promise<void> {
  const device = nfsDevice(options);
  const { mountPoint } = options;
  if (await reusableMount(options)) return;
  await mkdir(mountPoint, { recursive: true });
  const bin = options.mountBin ?? 'mount';
  const result = await loadExeca().execa(bin, ['-t', 'nfs', device, mountPoint], {
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
    stdin: 'ignore',
    all: true,
  });
  // Another Ferry process may have mounted it between our check and our mount.
  if (await reusableMount(options)) return;
  if (result.failed) {
    const said = (result.all ?? '').toString().trim().split('\n').filter(Boolean).at(-1) ?? result.shortMessage;
    throw new FerryError('registry.mount_failed', `cannot mount NFS share ${device} (server ${options.server}, path ${options.exportPath}) at ${mountPoint}: ${said}`, {
      hint: `check that ${options.server} exports ${options.exportPath} to this host, and that Ferry may run "${bin}" (root or sudo)`,
    });
  }
  throw new FerryError('registry.mount_failed', `"${bin}" reported success but ${mountPoint} is not a mount point; NFS share ${device} (server ${options.server}, path ${options.exportPath}) is not mounted`);
}

/**
 * True when something is already mounted at the mount point. An NFS mount of a different share
 * is an error (its files are not this registry); other mounts (bind mounts, autofs) were put
 * there by an administrator and are used as they are.
 */
async function reusableMount(options: EnsureNfsMountOptions): Promise<boolean> {
  const mount = await findMount(options.mountPoint);
  if (!mount) return false;
  const device = nfsDevice(options);
  if (mount.fsType.startsWith('nfs') && mount.source.replace(/\/+$/, '') !== device) {
    throw new FerryError('registry.mount_failed', `${options.mountPoint} already has NFS share ${mount.source} mounted, not ${device}`, {
      hint: 'unmount it, or give this registry its own mount_point',
    });
  }
  return true;
}
