import { mkdir, statfs } from 'node:fs/promises';
import { FerryError } from '../errors/ferry-error.js';
import { humanBytes } from '../util/human-bytes.js';

/** Refuses with model.insufficient_disk unless `dir` has `needed` bytes plus `margin` free. */
export async function assertFreeSpace(dir: string, needed: number, margin: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed + margin) {
    throw new FerryError('model.insufficient_disk', `not enough free space in ${dir}: ${humanBytes(free)} free, ${humanBytes(needed + margin)} needed (${humanBytes(needed)} plus a ${humanBytes(margin)} margin)`, {
      hint: 'free some space, or point pull_root in config.toml at a larger disk (disk_margin_bytes sets the margin)',
      details: { needed_bytes: needed, margin_bytes: margin, free_bytes: free },
    });
  }
}

/** Bytes an unprivileged writer may still use on the filesystem holding `dir`. */
export async function freeBytes(dir: string): Promise<number> {
  const fs = await statfs(dir);
  return fs.bavail * fs.bsize;
}

/** A write that failed because the disk (or the quota) is full: model.insufficient_disk, not a bad archive. */
export function isDiskFull(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}

export function diskFullError(dir: string, detail: string): FerryError {
  return new FerryError('model.insufficient_disk', `not enough free space in ${dir}: ${detail}`, { hint: 'free some space, or import into another registry' });
}
