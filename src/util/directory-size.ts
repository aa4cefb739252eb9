import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Bytes of all regular files under `dir` (symlinks are not followed); 0 when it does not
 * exist yet. Files that vanish while being walked (a downloader renaming a temp file) are
 * skipped rather than failing the walk.
 */
export async function directorySize(dir: string): Promise<number> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return 0;
    throw err;
  }
  let total = 0;
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await directorySize(path);
    else if (entry.isFile()) {
      try {
        total += (await lstat(path)).size;
      } catch {
        // gone between readdir and lstat
      }
    }
  }
  return total;
}
