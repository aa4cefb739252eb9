import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { TomlDate } from 'smol-toml';
import type { RegistryEntry } from './registry-entry.js';

/** The identity of one version of registry.toml; the sidecar is used only when all four match. */
export interface FileKey {
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  size: number;
}

/** What a sidecar gives back: the parsed rows with their JSON lines, and where each row's TOML chunk sits in the file. */
export interface CachedRegistry {
  models: Map<string, RegistryEntry>;
  extra: Record<string, unknown>;
  jsonLines: Map<RegistryEntry, string>;
  /** Rows in file order, and [start, end) of each one's chunk in the file's decoded text. */
  entries: RegistryEntry[];
  spans: number[];
}

interface Header {
  v: 1;
  key: FileKey;
  extra: string;
  /** Start and end offsets (in UTF-16 units of the decoded text) of each row's TOML chunk, in line order. */
  spans: number[];
}

const VERSION = 1;
const DATE_TAG = '$toml_date';

/**
 * `.registry.toml.cache.json`: the rows of one registry.toml version as JSON lines, written by
 * the writer right after its rename. Parsing 10,000 rows of TOML takes ~300 ms; JSON a fifth
 * of that, which is what keeps a cold `ferry model list` under half a second. The header holds
 * the TOML file's inode, mtime, ctime and size: any other writer (hal0, an editor) changes at
 * least one of them, and the sidecar is then ignored. It is only ever a cache.
 */
export class RegistryCacheFile {
  constructor(readonly path: string) {}

  static beside(tomlFile: string): RegistryCacheFile {
    return new RegistryCacheFile(join(dirname(tomlFile), `.${basename(tomlFile)}.cache.json`));
  }

  /** The cached rows of the TOML file whose identity is `key`, or undefined if the sidecar is for another version. */
  async load(key: FileKey): Promise<CachedRegistry | undefined> {
    let data: string;
    try {
      data = await readFile(this.path, 'utf8');
    } catch {
      return undefined;
    }
    try {
      return decode(data, key);
    } catch {
      return undefined; // torn or foreign: parse the TOML instead
    }
  }

  /** Written without fsync: after a crash it is at worst stale or torn, and both are detected. */
  async save(key: FileKey, extra: Record<string, unknown>, lines: string[], spans: number[]): Promise<void> {
    const header: Header = { v: VERSION, key, extra: toJsonLine(extra), spans };
    const tmp = `${this.path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify(header)}\n${lines.join('\n')}\n`);
      await rename(tmp, this.path);
    } catch {
      await rm(tmp, { force: true });
    }
  }

  async remove(): Promise<void> {
    await rm(this.path, { force: true });
  }
}

function decode(data: string, key: FileKey): CachedRegistry | undefined {
  const firstBreak = data.indexOf('\n');
  const header = JSON.parse(data.slice(0, firstBreak)) as Header;
  if (header.v !== VERSION || !sameKey(header.key, key)) return undefined;
  const lines = data.slice(firstBreak + 1).split('\n');
  lines.pop(); // the final newline
  if (lines.length * 2 !== header.spans.length) return undefined;
  const result: CachedRegistry = {
    models: new Map(),
    extra: fromJsonLine(header.extra) as Record<string, unknown>,
    jsonLines: new Map(),
    entries: [],
    spans: header.spans,
  };
  for (const line of lines) {
    const entry = fromJsonLine(line) as RegistryEntry;
    if (typeof entry?.id !== 'string') return undefined;
    result.models.set(entry.id, entry);
    result.jsonLines.set(entry, line);
    result.entries.push(entry);
  }
  return result;
}

/** JSON with TOML dates tagged, so a datetime stays a datetime (not a string) when the row is written again. */
export function toJsonLine(value: unknown): string {
  return JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
    const raw = this[key];
    // TomlDate's toISOString keeps its kind (local date, local time, offset datetime).
    return raw instanceof Date ? { [DATE_TAG]: raw.toISOString() } : v;
  });
}

function fromJsonLine(line: string): unknown {
  if (!line.includes(DATE_TAG)) return JSON.parse(line);
  return JSON.parse(line, (_key, v: unknown) => {
    if (v && typeof v === 'object' && DATE_TAG in v) return new TomlDate((v as Record<string, string>)[DATE_TAG]);
    return v;
  });
}

export function sameKey(a: FileKey, b: FileKey): boolean {
  return a.ino === b.ino && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.size === b.size;
}
