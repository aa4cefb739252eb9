import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { FerryError } from '../errors/ferry-error.js';
import { writeFileAtomic } from '../stores/atomic-write.js';
import { withFileLock } from '../stores/file-lock.js';
import { withHal0Flock } from '../stores/hal0-flock.js';
import type { RegistryEntry } from './registry-entry.js';
import { RegistryCacheFile, sameKey, toJsonLine, type FileKey } from './registry-cache-file.js';
import { splitRowChunks } from './row-chunks.js';

export const REGISTRY_FILE = 'registry.toml';
/** How long after the last write the sidecar cache is saved. */
const SIDECAR_DELAY_MS = 1000;

/** A parsed registry: the models by id plus any top-level keys Ferry does not know. */
export interface RegistrySnapshot {
  models: ReadonlyMap<string, RegistryEntry>;
  extra: Record<string, unknown>;
}

type CacheKey = FileKey;

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
  readonly hal0LockFile: string;
  private cache?: { key: CacheKey; snapshot: RegistrySnapshot };
  /** Serialised TOML of each entry object; an entry that did not change is not re-serialised. */
  private readonly chunkCache = new WeakMap<RegistryEntry, string>();
  /** The same for the sidecar's JSON lines. */
  private readonly jsonCache = new WeakMap<RegistryEntry, string>();
  /** Each row's chunk as UTF-8 with its trailing blank line, so a write encodes only new rows. */
  private readonly bytesCache = new WeakMap<RegistryEntry, Buffer>();
  /** The file's head (what comes before the rows) as written, when it was kept (see keepRowsAsWritten). */
  private readonly headCache = new WeakMap<Record<string, unknown>, string>();
  /** Text this process parsed rather than wrote or took from the sidecar: a writer keeps its unchanged rows as they are. */
  private parsedText?: { snapshot: RegistrySnapshot; text: string };
  private readonly sidecar: RegistryCacheFile;

  constructor(readonly dir: string) {
    this.file = join(dir, REGISTRY_FILE);
    // Ferry's cross-host lock directory; hal0's own flock file (`registry.toml.lock`) is taken too.
    this.lockPath = join(dir, `.${REGISTRY_FILE}.ferry-lock`);
    this.hal0LockFile = `${this.file}.lock`;
    this.sidecar = RegistryCacheFile.beside(this.file);
  }

  /**
   * The registry as it is on disk now. Same file version (inode, mtime, ctime, size) as last
   * time: the same snapshot object, so callers may cache what they derive from it by identity.
   */
  async read(): Promise<RegistrySnapshot> {
    let handle;
    try {
      handle = await open(this.file, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return (this.empty ??= { models: new Map(), extra: {} });
      throw ioError(this.file, err);
    }
    try {
      // fstat and read the same open file, so the key always describes the text that was parsed.
      const info = await handle.stat();
      const key: CacheKey = { ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, size: info.size };
      if (this.cache && sameKey(this.cache.key, key)) return this.cache.snapshot;
      const snapshot = (await this.loadSidecar(key)) ?? this.parse(await handle.readFile('utf8'));
      this.cache = { key, snapshot };
      return snapshot;
    } catch (err) {
      if (err instanceof FerryError) throw err;
      throw ioError(this.file, err);
    } finally {
      await handle.close();
    }
  }

  private parse(text: string): RegistrySnapshot {
    const snapshot = parseRegistry(text, this.file);
    this.parsedText = { snapshot, text };
    return snapshot;
  }

  /**
   * A writer whose snapshot was parsed from text Ferry did not write (hal0's, or a hand edit)
   * keeps the text of every row it does not change, and the head before the rows: a hal0 `1.0`
   * stays a float, comments stay. Each piece is used only if, parsed on its own, it is exactly
   * its row (or, for the head, exactly the data outside the rows): then it can sit beside rows
   * serialised afresh and means the same. Otherwise every row is serialised afresh, as before.
   */
  private keepRowsAsWritten(snapshot: RegistrySnapshot): void {
    const parsed = this.parsedText;
    if (parsed?.snapshot !== snapshot) return;
    this.parsedText = undefined;
    const chunks = splitRowChunks(parsed.text);
    if (!chunks || chunks.rows.size !== snapshot.models.size) return;
    // smol-toml makes null-prototype tables: compare the top levels as plain objects.
    const readsAs = (text: string, expected: Record<string, unknown>, unwrap: (doc: Record<string, any>) => unknown): boolean => {
      try {
        const found = unwrap(parseToml(text));
        return typeof found === 'object' && found !== null && isDeepStrictEqual({ ...found }, { ...expected });
      } catch {
        return false;
      }
    };
    if (!readsAs(chunks.head, snapshot.extra, (doc) => doc)) return;
    for (const [id, entry] of snapshot.models) {
      const { id: _id, ...fields } = entry;
      const chunk = chunks.rows.get(id);
      const onlyThisRow = (doc: Record<string, any>) => (Object.keys(doc).join() === 'models' && Object.keys(doc.models).length === 1 ? doc.models[id] : undefined);
      if (chunk === undefined || !readsAs(chunk, fields, onlyThisRow)) return;
    }
    for (const [id, entry] of snapshot.models) this.chunkCache.set(entry, chunks.rows.get(id)!);
    this.headCache.set(snapshot.extra, chunks.head);
  }

  /** Readers take the rows from the sidecar without reading the TOML at all; writers fetch the chunks later (attachChunks). */
  private async loadSidecar(key: CacheKey): Promise<RegistrySnapshot | undefined> {
    const cached = await this.sidecar.load(key);
    if (!cached) return undefined;
    for (const [entry, line] of cached.jsonLines) this.jsonCache.set(entry, line);
    const snapshot = { models: cached.models, extra: cached.extra };
    this.pendingSpans = { snapshot, key, entries: cached.entries, spans: cached.spans };
    return snapshot;
  }

  /**
   * A writer that got its snapshot from the sidecar takes each row's TOML chunk from the
   * file itself (the sidecar says where), so it need not re-serialise 10,000 unchanged rows.
   * Only if the file is still the version the sidecar described.
   */
  private async attachChunks(snapshot: RegistrySnapshot): Promise<void> {
    const pending = this.pendingSpans;
    if (!pending || pending.snapshot !== snapshot) return;
    this.pendingSpans = undefined;
    const handle = await open(this.file, 'r');
    try {
      const info = await handle.stat();
      if (!sameKey(pending.key, { ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, size: info.size })) return;
      const text = await handle.readFile('utf8');
      const { entries, spans } = pending;
      for (let i = 0; i < entries.length; i++) {
        const start = spans[2 * i];
        const end = spans[2 * i + 1];
        if (end > text.length || !text.startsWith('[models', start)) return;
        this.chunkCache.set(entries[i], text.slice(start, end));
      }
    } finally {
      await handle.close();
    }
  }

  private pendingSpans?: { snapshot: RegistrySnapshot; key: CacheKey; entries: RegistryEntry[]; spans: number[] };
  /** The last sidecar write, done after the lock is released (it is only a cache; see RegistryCacheFile). */
  private sidecarWrite: Promise<void> = Promise.resolve();

  /** Waits for the sidecar write of the last mutation (tests; a process exiting waits for it anyway). */
  async flush(): Promise<void> {
    this.saveSidecarNow();
    await this.sidecarWrite;
  }

  /** The sidecar of the latest write, saved once a burst of writes has settled. */
  private pendingSidecar?: () => Promise<void>;
  private sidecarTimer?: NodeJS.Timeout;

  private saveSidecarNow(): void {
    clearTimeout(this.sidecarTimer);
    const save = this.pendingSidecar;
    this.pendingSidecar = undefined;
    if (save) this.sidecarWrite = this.sidecarWrite.then(save).catch(() => undefined);
  }

  private empty?: RegistrySnapshot;

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
    return withFileLock(this.lockPath, () => withHal0Flock(this.hal0LockFile, async () => {
      const current = await this.read();
      const models = new Map(current.models);
      let dirty = false;
      const draft: RegistryDraft = {
        get: (id) => models.get(id),
        has: (id) => models.has(id),
        set: (entry) => {
          assertStorable(entry);
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
      if (dirty) {
        await this.attachChunks(current);
        this.keepRowsAsWritten(current);
        await this.write({ models, extra: current.extra });
      }
      return result;
    }));
  }

  private async write(snapshot: RegistrySnapshot): Promise<void> {
    const { bytes, entries, spans } = this.serialise(snapshot);
    await this.sidecarWrite; // so the sweep below never removes our own sidecar's temp file
    await removeLeftoverTempFiles(this.dir);
    await writeFileAtomic(this.file, bytes);
    const info = await stat(this.file);
    const key: CacheKey = { ino: info.ino, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs, size: info.size };
    // Cached in file order (sorted by id), so this process lists rows exactly as a fresh reader would.
    this.cache = { key, snapshot: { models: new Map(entries.map((e) => [e.id, e])), extra: snapshot.extra } };
    // Not awaited: a sidecar is only used when its recorded key matches the file, so one that
    // lands after a newer writer's is ignored, never wrong. The next write waits for this one.
    // Debounced: building it costs ~25 ms at 10,000 rows, and a burst of writes needs only the last.
    this.pendingSidecar = () => this.sidecar.save(key, snapshot.extra, entries.map((e) => this.jsonLineOf(e)), spans);
    clearTimeout(this.sidecarTimer);
    this.sidecarTimer = setTimeout(() => this.saveSidecarNow(), SIDECAR_DELAY_MS);
    this.sidecarTimer.unref(); // a process that exits first leaves the sidecar stale, which readers detect
  }

  /** The file's text, plus where each row's chunk sits in it (for the sidecar). Rows are sorted by id. */
  /**
   * The file's bytes as one buffer per row (each row's UTF-8 is cached with the row, so a write
   * encodes only what changed), plus where each row's chunk sits in the text (for the sidecar).
   * Rows are sorted by id and separated by a blank line.
   */
  private serialise(snapshot: RegistrySnapshot): { bytes: Buffer[]; entries: RegistryEntry[]; spans: number[] } {
    const bytes: Buffer[] = [];
    let offset = 0;
    const head = this.headCache.get(snapshot.extra) ?? (Object.keys(snapshot.extra).length > 0 ? stringifyToml(snapshot.extra).trimEnd() : '');
    if (head) {
      bytes.push(Buffer.from(`${head}\n\n`));
      offset = head.length + 2;
    }
    const ids = [...snapshot.models.keys()].sort();
    const entries: RegistryEntry[] = [];
    const spans: number[] = [];
    for (const id of ids) {
      const entry = snapshot.models.get(id)!;
      const chunk = this.chunkOf(entry);
      let encoded = this.bytesCache.get(entry);
      if (!encoded) {
        encoded = Buffer.from(`${chunk}\n\n`);
        this.bytesCache.set(entry, encoded);
      }
      bytes.push(encoded);
      entries.push(entry);
      spans.push(offset, offset + chunk.length);
      offset += chunk.length + 2;
    }
    // The file ends with one newline, not a blank line.
    if (bytes.length === 0) bytes.push(Buffer.from('\n'));
    else bytes[bytes.length - 1] = bytes[bytes.length - 1].subarray(0, -1);
    return { bytes, entries, spans };
  }

  private chunkOf(entry: RegistryEntry): string {
    let chunk = this.chunkCache.get(entry);
    if (chunk === undefined) {
      const { id, ...fields } = entry;
      chunk = stringifyToml({ models: { [id]: fields } }).trimEnd();
      this.chunkCache.set(entry, chunk);
    }
    return chunk;
  }

  private jsonLineOf(entry: RegistryEntry): string {
    let line = this.jsonCache.get(entry);
    if (line === undefined) {
      line = toJsonLine(entry);
      this.jsonCache.set(entry, line);
    }
    return line;
  }
}

/**
 * TOML has no null and smol-toml drops null silently, so a row holding one would read back
 * different from what was written (and from what this process caches): refuse it.
 */
function assertStorable(entry: RegistryEntry): void {
  const walk = (value: unknown, where: string): void => {
    if (value === null) throw new FerryError('request.invalid', `${where} is null; TOML cannot store null (omit the key instead)`);
    if (typeof value === 'bigint' || typeof value === 'function' || typeof value === 'symbol') {
      throw new FerryError('request.invalid', `${where} is a ${typeof value}; it cannot be stored in the registry`);
    }
    if (typeof value === 'object' && !(value instanceof Date)) {
      for (const [k, v] of Object.entries(value as object)) walk(v, `${where}.${k}`);
    }
  };
  walk(entry, `model "${entry.id}"`);
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

function ioError(file: string, err: unknown): FerryError {
  return new FerryError('registry.io', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
}
