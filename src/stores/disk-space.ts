import { mkdir, statfs } from 'node:fs/promises';
import { FerryError } from '../errors/ferry-error.js';

/** Refuses with model.insufficient_disk unless `dir` has `needed` bytes plus `margin` free. */
export async function assertFreeSpace(dir: string, needed: number, margin: number): Promise<void> {
  await mkdir(dir, { recursive: true });
  const fs = await statfs(dir);
  const free = fs.bavail * fs.bsize;
  if (free < needed + margin) {
    throw new FerryError('model.insufficient_disk', `not enough free space in ${dir}: need ${needed} bytes plus a ${margin}-byte margin, ${free} free`, {
      details: { needed_bytes: needed, margin_bytes: margin, free_bytes: free },
    });
  }
}
