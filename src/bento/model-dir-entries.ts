import { chmod, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

export interface ModelDirEntry {
  /** `/`-joined, relative to the walked directory. */
  path: string;
  isDirectory: boolean;
}

/**
 * The regular files and directories under `dir`, sorted by name at each level, each directory
 * before what it holds (so the same tree always lists the same way). Anything else (a symlink,
 * a device, a FIFO) is refused with the error `refuse` makes, never skipped or followed.
 */
export async function modelDirEntries(dir: string, refuse: (path: string) => Error, prefix = ''): Promise<ModelDirEntry[]> {
  const out: ModelDirEntry[] = [];
  const entries = (await readdir(join(dir, prefix), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const entry of entries) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push({ path, isDirectory: true }, ...(await modelDirEntries(dir, refuse, path)));
    else if (entry.isFile()) out.push({ path, isDirectory: false });
    else throw refuse(path);
  }
  return out;
}

/**
 * Directories 755, files 644 (755 when the owner may run them): a version made under a
 * restrictive umask must still be readable by other nodes' users of a shared registry.
 */
export async function makeReadableByAll(dir: string): Promise<void> {
  for (const entry of await modelDirEntries(dir, (path) => new Error(`${path}: not a regular file or directory`))) {
    const path = join(dir, entry.path);
    const executable = !entry.isDirectory && ((await stat(path)).mode & 0o100) !== 0;
    await chmod(path, entry.isDirectory || executable ? 0o755 : 0o644);
  }
}
