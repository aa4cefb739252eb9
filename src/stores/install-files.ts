import { lstat, mkdir, rename, rm, rmdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { FerryError } from '../errors/ferry-error.js';
import { isWithin } from '../util/is-within.js';
import { fsyncDirectory } from './atomic-write.js';

/** One verified file to move into place: `from` (a partial file) becomes `to`. */
export interface InstallFile {
  from: string;
  to: string;
}

/** The steps of an install, in order; `beforeStep` sees each one (tests fail them on purpose). */
export type InstallStep = 'prove-ownership' | 'place' | 'fsync' | 'prove-ownership-again' | 'commit' | 'remove-previous';

export interface InstallOptions {
  files: InstallFile[];
  /** Nothing outside this directory is ever created or removed (the pull root). */
  root: string;
  /** Throws unless this worker still owns the job (lock token current, part locks held). */
  proveOwnership: () => Promise<void>;
  /**
   * Writes the registry row, atomically, and answers the paths the row it replaced named (files
   * or directories) so they can be removed. Must throw, writing nothing, if any answered path is
   * one of the `to` paths or holds one: the layout gives a replacement new names, this checks it.
   */
  commit: () => Promise<string[]>;
  /** Test hook, called before each step (for `place`, once per file); a throw fails that step. */
  beforeStep?: (step: InstallStep, index?: number) => void | Promise<void>;
  log?: (message: string) => void;
}

/**
 * Installs verified files and commits their registry row as one transaction.
 *
 * Contract:
 * - Ownership is proved before the first file moves and again right before the row is written.
 * - Each `to` is a new name (never a path the replaced row names); files are renamed into place
 *   and their directories fsynced, then `commit` writes the row.
 * - If anything fails before `commit` has returned, every file already placed is renamed back to
 *   its `from` (the verified bytes stay for the next attempt, which then installs without a
 *   download), directories this call created are removed when empty, the replaced row and its
 *   files are untouched, and the error is rethrown.
 * - Only after `commit` returned are the replaced row's paths removed (inside `root` only; a file
 *   a slot still holds open stays readable until closed, which Linux allows). A failure there is
 *   logged, never thrown: the row is already true and names the new files.
 */
export async function installFiles(opts: InstallOptions): Promise<void> {
  const step = async (name: InstallStep, index?: number) => opts.beforeStep?.(name, index);
  const placed: InstallFile[] = [];
  const createdDirs: string[] = [];
  let previous: string[];
  try {
    await step('prove-ownership');
    await opts.proveOwnership();
    for (const [i, file] of opts.files.entries()) {
      await step('place', i);
      createdDirs.push(...(await makeParents(dirname(file.to), opts.root)));
      await rename(file.from, file.to);
      placed.push(file);
    }
    await step('fsync');
    for (const dir of new Set(opts.files.map((f) => dirname(f.to)))) await fsyncDirectory(dir);
    await step('prove-ownership-again');
    await opts.proveOwnership();
    await step('commit');
    previous = await opts.commit();
  } catch (err) {
    await rollBack(placed, createdDirs, opts.log);
    throw err;
  }
  try {
    await step('remove-previous');
    await removePrevious(previous, opts.files.map((f) => f.to), opts.root);
  } catch (err) {
    opts.log?.(`the replaced files could not all be removed (the new row is in place): ${(err as Error).message}`);
  }
}

/** A replaced row's path that holds (or is) one of the new files: refused by `commit` implementations. */
export function overlapsInstalled(previous: string, installed: readonly string[]): boolean {
  const p = resolve(previous);
  return installed.some((to) => resolve(to) === p || isWithin(p, resolve(to)));
}

async function rollBack(placed: InstallFile[], createdDirs: string[], log?: (m: string) => void): Promise<void> {
  for (const file of placed.reverse()) {
    await rename(file.to, file.from).catch((e: Error) => log?.(`could not move ${file.to} back to ${file.from}: ${e.message}`));
  }
  for (const dir of createdDirs.reverse()) await rmdir(dir).catch(() => undefined);
}

/** mkdir -p that answers the directories it created, deepest last; never above `root`. */
async function makeParents(dir: string, root: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = resolve(dir); isWithin(resolve(root), d); d = dirname(d)) {
    if (await lstat(d).then(() => true, () => false)) break;
    missing.unshift(d);
  }
  await mkdir(dir, { recursive: true });
  return missing;
}

async function removePrevious(previous: string[], installed: string[], root: string): Promise<void> {
  const rootDir = resolve(root);
  for (const path of previous) {
    const p = resolve(path);
    if (!isWithin(rootDir, p)) continue; // a file the user added from elsewhere stays theirs
    if (overlapsInstalled(p, installed)) throw new FerryError('internal', `refusing to remove ${p}: it holds a newly installed file`);
    await rm(p, { recursive: true, force: true });
    // Prune the directories the old layout made for it, up to the root, while they are empty.
    for (let d = dirname(p); isWithin(rootDir, d); d = dirname(d)) {
      if (!(await rmdir(d).then(() => true, () => false))) break;
    }
  }
}
