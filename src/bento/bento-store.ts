import { readFile as readFileCallback } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { FerryError, isErrnoException } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../stores/atomic-write.js';
import { assertBentoName, assertBentoVersion, isValidTagPart } from './bento-name.js';
import { creationTimeMicros, MODEL_YAML, parseModelYaml, type ModelYaml } from './model-yaml.js';
import { pathExists } from '../util/fs-exists.js';

export const LATEST_FILE = 'latest';
/** Ferry's temporary directories live in the store root, beside `models/`, so renames stay on one filesystem. */
export const TEMP_PREFIX = '.ferry-tmp-';
/** Temporary directories older than this are leftovers of a killed process. */
const STALE_TEMP_MS = 24 * 60 * 60 * 1000;

/** One stored version: its model.yaml fields as written, plus where it lives. */
export interface BentoModelInfo {
  tag: string;
  name: string;
  version: string;
  path: string;
  creation_time?: string;
  /** Every key of model.yaml, in the file's order, unknown keys included. */
  info: ModelYaml;
  /** Set instead of `info` fields when model.yaml is missing or does not parse. */
  error?: string;
}

/**
 * Listing reads thousands of small files; Node 20's callback readFile does it in fewer thread-pool
 * round trips than fs/promises' (measured ~35% faster for 5,000 model.yaml files).
 */
const readSmallFile = promisify(readFileCallback);

/** Files read at once while listing; enough to keep the thread pool busy on NFS. */
const READ_CONCURRENCY = 64;

/**
 * A directory in BentoML's model-store layout (`models/<name>/<version>/model.yaml`,
 * `models/<name>/latest`). Reads straight from the filesystem, so a store written by
 * BentoML or Neutree is read as is, and what Ferry writes is what they expect.
 */
export class BentoStore {
  readonly modelsDir: string;

  constructor(readonly root: string) {
    this.modelsDir = join(root, 'models');
  }

  versionDir(name: string, version: string): string {
    return join(this.modelsDir, assertBentoName(name), assertBentoVersion(version));
  }

  /** Every version of every name (or of one name), newest creation_time first. */
  async list(onlyName?: string): Promise<BentoModelInfo[]> {
    const names = onlyName ? [assertBentoName(onlyName)] : await listDirs(this.modelsDir);
    const perName = await Promise.all(names.map(async (name) => (await listDirs(join(this.modelsDir, name))).map((version) => ({ name, version }))));
    const found = perName.flat();
    const infos = await mapLimit(found, READ_CONCURRENCY, ({ name, version }) => this.readInfo(name, version));
    return sortNewestFirst(infos);
  }

  async get(name: string, version: string): Promise<BentoModelInfo> {
    const dir = this.versionDir(name, version);
    if (!(await isDirectory(dir))) throw notFound(name, version);
    return this.readInfo(name, version);
  }

  /** A concrete version for `version`, following (and if needed rebuilding) `latest`. */
  async resolveVersion(name: string, version: string): Promise<string> {
    assertBentoName(name);
    if (version !== 'latest') {
      if (!(await isDirectory(this.versionDir(name, version)))) throw notFound(name, version);
      return version;
    }
    const latest = await this.readLatest(name);
    if (latest) return latest;
    throw new FerryError('bento.not_found', `model "${name}" has no versions in ${this.root}`);
  }

  /**
   * The version `latest` names, rebuilt from the newest creation_time when the file is
   * missing or names a version that is gone (as BentoML's store does on read).
   */
  async readLatest(name: string): Promise<string | undefined> {
    const nameDir = join(this.modelsDir, assertBentoName(name));
    let pointed: string | undefined;
    try {
      pointed = (await readFile(join(nameDir, LATEST_FILE), 'utf8')).trim();
    } catch (err) {
      if (!isErrnoException(err) || err.code !== 'ENOENT') throw err;
    }
    if (pointed && isValidTagPart(pointed) && pointed !== 'latest' && (await isDirectory(join(nameDir, pointed)))) return pointed;
    return this.rebuildLatest(name);
  }

  /** Point `latest` at the newest remaining version; returns it, or undefined when none remain. */
  async rebuildLatest(name: string): Promise<string | undefined> {
    const newest = (await this.list(name)).find((m) => !m.error);
    if (!newest) return undefined;
    await this.writeLatest(name, newest.version).catch((err) => {
      // A read-only share (an NFS export mounted ro) is still readable; only the rebuild is lost.
      if (!isErrnoException(err) || !['EROFS', 'EACCES', 'EPERM'].includes(err.code ?? '')) throw err;
    });
    return newest.version;
  }

  /**
   * Move a complete, verified version directory into place, then update `latest` when the new
   * version is not older than the current one. An existing version is a conflict, never merged.
   */
  async commit(stagedDir: string, name: string, version: string, creationTime: unknown): Promise<string> {
    const nameDir = join(this.modelsDir, assertBentoName(name));
    const dest = this.versionDir(name, version);
    const createdNameDir = !(await isDirectory(nameDir));
    await mkdir(nameDir, { recursive: true });
    await chmod(stagedDir, 0o755); // mkdtemp makes 0700; other nodes' users must read the share
    try {
      if (await pathExists(dest)) throw exists409(name, version);
      await rename(stagedDir, dest);
    } catch (err) {
      if (createdNameDir) await rmdir(nameDir).catch(() => undefined);
      if (isErrnoException(err) && (err.code === 'ENOTEMPTY' || err.code === 'EEXIST')) throw exists409(name, version);
      throw err;
    }
    await this.updateLatestAfterAdd(name, version, creationTime);
    return dest;
  }

  private async updateLatestAfterAdd(name: string, version: string, creationTime: unknown): Promise<void> {
    const current = await this.readLatest(name);
    if (current && current !== version) {
      const currentInfo = await this.readInfo(name, current);
      const older = creationTimeMicros(creationTime) < creationTimeMicros(currentInfo.creation_time);
      if (older) return;
    }
    await this.writeLatest(name, version);
  }

  /** Remove a version; `latest` moves to the newest remaining one and the name goes with its last version. */
  async delete(name: string, version: string): Promise<void> {
    const dir = this.versionDir(name, version);
    if (!(await isDirectory(dir))) throw notFound(name, version);
    // Rename first so readers never see a half-deleted version.
    const grave = join(this.root, `${TEMP_PREFIX}rm-${randomBytes(6).toString('hex')}`);
    await rename(dir, grave);
    await rm(grave, { recursive: true, force: true });
    const remaining = await listDirs(join(this.modelsDir, name));
    if (remaining.length === 0) {
      await rm(join(this.modelsDir, name), { recursive: true, force: true });
      return;
    }
    await this.rebuildLatest(name);
  }

  /**
   * A fresh temporary directory in the store root (same filesystem as the destination). Ones a
   * killed import or add left behind are removed here once a day old: younger ones may belong
   * to work still running, on this node or another one sharing the registry.
   */
  async makeTempDir(purpose: string): Promise<string> {
    const dir = join(this.root, `${TEMP_PREFIX}${purpose}-${randomBytes(8).toString('hex')}`);
    await mkdir(this.root, { recursive: true });
    await this.removeStaleTempDirs();
    await mkdir(dir, { mode: 0o700 });
    return dir;
  }

  private async removeStaleTempDirs(): Promise<void> {
    const cutoff = Date.now() - STALE_TEMP_MS;
    for (const name of await readdir(this.root)) {
      if (!name.startsWith(TEMP_PREFIX)) continue;
      const path = join(this.root, name);
      const info = await stat(path).catch(() => undefined);
      if (info && info.mtimeMs < cutoff) await rm(path, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  private async writeLatest(name: string, version: string): Promise<void> {
    await writeFileAtomic(join(this.modelsDir, name, LATEST_FILE), version);
  }

  private async readInfo(name: string, version: string): Promise<BentoModelInfo> {
    const path = join(this.modelsDir, name, version);
    const base = { tag: `${name}:${version}`, name, version, path };
    const file = join(path, MODEL_YAML);
    try {
      const info = parseModelYaml(await readSmallFile(file, 'utf8'), file);
      const creation = info.creation_time;
      return { ...base, ...(typeof creation === 'string' ? { creation_time: creation } : {}), info };
    } catch (err) {
      return { ...base, info: {}, error: (err as Error).message };
    }
  }
}

function sortNewestFirst(infos: BentoModelInfo[]): BentoModelInfo[] {
  const keyed = infos.map((m) => ({ m, t: creationTimeMicros(m.creation_time) }));
  keyed.sort((a, b) => {
    const ta = Number.isNaN(a.t) ? -Infinity : a.t;
    const tb = Number.isNaN(b.t) ? -Infinity : b.t;
    return tb - ta || (a.m.tag < b.m.tag ? -1 : a.m.tag > b.m.tag ? 1 : 0);
  });
  return keyed.map((k) => k.m);
}

/** Subdirectories with valid tag names; `latest`, dot-entries (our temp dirs) and stray files are not versions. */
async function listDirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory() && e.name !== LATEST_FILE && isValidTagPart(e.name)).map((e) => e.name);
  } catch (err) {
    if (isErrnoException(err) && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return [];
    throw err;
  }
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

function notFound(name: string, version: string): FerryError {
  return new FerryError('bento.not_found', `model ${name}:${version} is not in the store`);
}

function exists409(name: string, version: string): FerryError {
  return new FerryError('bento.exists', `model ${name}:${version} already exists`, { hint: 'delete it first or import a different version' });
}
