import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { FerryError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../stores/atomic-write.js';
import { withFileLock } from '../stores/file-lock.js';
import type { RegistryEntry } from './registry-entry.js';

export const REGISTRY_FILE = 'registry.toml';

/** A parsed registry: the models by id plus any top-level keys Ferry does not know. */
export interface RegistrySnapshot {
  models: ReadonlyMap<string, RegistryEntry>;
  extra: Record<string, unknown>;
}

interface CacheKey {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  size: number;
}

/** Changes a mutation asks for; entries are replaced, never edited in place (the text cache relies on it). */
export interface RegistryDraft {
  get(id: string): RegistryEntry | undefined;
  has(id: string): boolean;
  set(entry: RegistryEntry): void;
  delete(id: string): boolean;
  values(): IterableIterator<RegistryEntry>;
}

/**
 * hal0's registry.toml: readers cache by the file's identity (inode, mtime, size), writers
 * serialise through a lock directory, re-read under it, and replace the file atomically.
 * A file that does not parse is an error naming the line; it is never read as empty and
 * never overwritten.
 */
export class RegistryStore {
  readonly file: string;
  readonly lockPath: string;
  private cache?: { key: CacheKey; snapshot: RegistrySnapshot };
  /** Serialised TOML of each entry object; an entry that did not change is not re-serialised. */
  private readonly chunkCache = new WeakMap<RegistryEntry, string>();

  constructor(readonly dir: string) {
    this.file = join(dir, REGISTRY_FILE);
    this.lockPath = `${this.file}.lock`;
  }

  async read(): Promise<RegistrySnapshot> {
    let info;
    try {
      info = await stat(this.file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { models: new Map(), extra: {} };
      throw ioError(this.file, err);
    }
    const key: CacheKey = { ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, size: info.size };
    if (this.cache && sameKey(this.cache.key, key)) return this.cache.snapshot;
    const text = await readFile(this.file, 'utf8');
    const snapshot = parseRegistry(text, this.file);
    this.cache = { key, snapshot };
    return snapshot;
  }

  async list(): Promise<RegistryEntry[]> {
    return [...(await this.read()).models.values()];
  }

  async get(id: string): Promise<RegistryEntry | undefined> {
    return (await this.read()).models.get(id);
  }

  /**
   * Apply `change` to the current registry under the lock and write the result atomically.
   * `change` sees the file as it is now (not a cached copy from before the lock).
   */
  async mutate<T>(change: (draft: RegistryDraft) => T | Promise<T>): Promise<T> {
    await mkdir(this.dir, { recursive: true });
    return withFileLock(this.lockPath, async () => {
      const current = await this.read();
      const models = new Map(current.models);
      let dirty = false;
      const draft: RegistryDraft = {
        get: (id) => models.get(id),
        has: (id) => models.has(id),
        set: (entry) => {
          models.set(entry.id, entry);
          dirty = true;
        },
        delete: (id) => {
          const had = models.delete(id);
          dirty ||= had;
          return had;
        },
        values: () => models.values(),
      };
      const result = await change(draft);
      if (dirty) await this.write({ models, extra: current.extra });
      return result;
    });
  }

  private async write(snapshot: RegistrySnapshot): Promise<void> {
    const text = this.serialise(snapshot);
    await removeLeftoverTempFiles(this.dir);
    await writeFileAtomic(this.file, text);
    const info = await stat(this.file);
    this.cache = {
      key: { ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, size: info.size },
      snapshot,
    };
  }

  private serialise(snapshot: RegistrySnapshot): string {
    const parts: string[] = [];
    if (Object.keys(snapshot.extra).length > 0) parts.push(stringifyToml(snapshot.extra));
    const ids = [...snapshot.models.keys()].sort();
    for (const id of ids) {
      const entry = snapshot.models.get(id)!;
      let chunk = this.chunkCache.get(entry);
      if (chunk === undefined) {
        const { id: _id, ...fields } = entry;
        chunk = stringifyToml({ models: { [id]: fields } });
        this.chunkCache.set(entry, chunk);
      }
      parts.push(chunk);
    }
    return parts.join('\n\n') + '\n';
  }
}

/** A writer killed between creating and renaming its temp file leaves it behind; the next writer, holding the lock, removes it. */
async function removeLeftoverTempFiles(dir: string): Promise<void> {
  const names = await readdir(dir);
  await Promise.all(
    names
      .filter((n) => n.startsWith(`.${REGISTRY_FILE}.`) && n.endsWith('.tmp'))
      .map((n) => rm(join(dir, n), { force: true })),
  );
}

export function parseRegistry(text: string, file: string): RegistrySnapshot {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const where = err instanceof TomlError ? `:${err.line}:${err.column}` : '';
    const reason = (err as Error).message.split('\n')[0];
    throw new FerryError('registry.corrupt', `${file}${where}: registry does not parse: ${reason}`, {
      hint: 'fix or restore the file; Ferry will not overwrite a registry it cannot read',
    });
  }
  const { models: raw, ...extra } = doc;
  const models = new Map<string, RegistryEntry>();
  const add = (id: unknown, fields: unknown) => {
    if (typeof id !== 'string' || !isTable(fields) || typeof fields.path !== 'string') {
      throw new FerryError('registry.corrupt', `${file}: model ${JSON.stringify(id)} has no "path"`);
    }
    models.set(id, { ...fields, id } as RegistryEntry);
  };
  if (Array.isArray(raw)) {
    // hal0's older form: [[models]] with id inside. Read it; the next write uses the keyed form.
    for (const row of raw) {
      if (!isTable(row)) throw new FerryError('registry.corrupt', `${file}: [[models]] row is not a table`);
      const { id, ...fields } = row;
      add(id, fields);
    }
  } else if (isTable(raw)) {
    for (const [id, fields] of Object.entries(raw)) add(id, fields);
  } else if (raw !== undefined) {
    throw new FerryError('registry.corrupt', `${file}: "models" must be a table`);
  }
  return { models, extra };
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function sameKey(a: CacheKey, b: CacheKey): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.size === b.size;
}

function ioError(file: string, err: unknown): FerryError {
  return new FerryError('registry.io', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
}
