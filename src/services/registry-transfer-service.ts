import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, mkdtemp, readdir, readFile, rename, rm, rmdir, stat, symlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stringify as stringifyToml } from 'smol-toml';
import type * as Tar from 'tar';
import { lazyModule } from '../util/lazy-module.js';

const loadTar = lazyModule<typeof Tar>('tar');
import type { ArchiveLimits } from '../bento/bento-archive.js';
import { safeExtract, safeRelativePath, type ExtractedFile } from '../bento/safe-extract.js';
import { FerryError, isErrnoException } from '../errors/ferry-error.js';
import { isValidModelId } from '../registry/model-id.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import { parseRegistry, type RegistryStore } from '../registry/registry-store.js';
import { fsyncDirectory, tempPathFor } from '../stores/atomic-write.js';
import { sha256File } from '../util/hash-stream.js';
import { isWithin } from '../util/is-within.js';
import type { ModelService } from './model-service.js';

export const EXPORT_MANIFEST = 'ferry-registry-export.json';
const EXPORT_FORMAT = 'ferry-registry-export';
const WEIGHTS_DIR = 'weights';

/** What an export carries besides registry.toml: where each row path goes, and each file's digest. */
interface ExportManifest {
  format: typeof EXPORT_FORMAT;
  version: 1;
  exported_at: string;
  index_only: boolean;
  /** Every path a row names (file or directory), and where it lands relative to the model root. */
  paths: Array<{ source_path: string; rel: string }>;
  /** Every file in `weights/`, relative to the model root, with its sha256. */
  files: Array<{ rel: string; sha256: string; size_bytes: number }>;
}

export interface RegistryTransferDeps {
  registry: RegistryStore;
  models: ModelService;
  modelRoot: string;
  limits: ArchiveLimits;
}

export interface ExportOptions {
  /** Only registry.toml's rows; no weights. */
  indexOnly?: boolean;
}

export interface ImportOptions {
  /** Rows whose id already exists are replaced instead of skipped. */
  replace?: boolean;
}

export interface ImportSummary {
  added: string[];
  replaced: string[];
  skipped: string[];
  files: number;
}

/**
 * Moves hal0's registry (registry.toml rows plus the weights they name) between machines as one
 * tar stream. Import verifies every file's sha256 before any row is added, moves content into
 * place before the one registry write, and undoes the moves if that write fails.
 */
export class RegistryTransferService {
  constructor(private readonly deps: RegistryTransferDeps) {}

  async exportTo(outFile: string, options: ExportOptions = {}): Promise<{ rows: number; files: number; bytes: number }> {
    const rows = await this.deps.models.list();
    const staging = await mkdtemp(join(dirname(outFile), '.ferry-export-'));
    const tmpOut = tempPathFor(outFile);
    try {
      const manifest = await this.buildManifest(rows, options.indexOnly ?? false, staging);
      await writeFile(join(staging, EXPORT_MANIFEST), JSON.stringify(manifest, null, 2));
      await writeFile(join(staging, 'registry.toml'), serialiseRows(rows));
      const names = [EXPORT_MANIFEST, 'registry.toml', ...(manifest.files.length ? [WEIGHTS_DIR] : [])];
      // Weights are symlinks in the staging dir; `follow` packs their targets' content under our names.
      const pack = loadTar().create({ cwd: staging, portable: true, follow: true }, names);
      await pipeline(Readable.from(pack as AsyncIterable<Buffer>), createWriteStream(tmpOut, { flags: 'wx' }));
      await rename(tmpOut, outFile);
      return { rows: rows.length, files: manifest.files.length, bytes: manifest.files.reduce((n, f) => n + f.size_bytes, 0) };
    } finally {
      await rm(tmpOut, { force: true });
      await rm(staging, { recursive: true, force: true });
    }
  }

  private async buildManifest(rows: RegistryEntry[], indexOnly: boolean, staging: string): Promise<ExportManifest> {
    const manifest: ExportManifest = { format: EXPORT_FORMAT, version: 1, exported_at: new Date().toISOString(), index_only: indexOnly, paths: [], files: [] };
    if (indexOnly) return manifest;
    const seen = new Map<string, string>();
    let external = 0;
    for (const row of rows) {
      const digests = recordedDigests(row);
      for (const source of rowPaths(row)) {
        if (seen.has(source)) continue;
        const rel = isWithin(this.deps.modelRoot, source) ? relative(this.deps.modelRoot, source) : join('imported', `${external++}-${basename(source)}`);
        seen.set(source, rel);
        manifest.paths.push({ source_path: source, rel });
        for (const file of await regularFilesUnder(source, row.id)) {
          const fileRel = file === source ? rel : join(rel, relative(source, file));
          if (manifest.files.some((f) => f.rel === fileRel)) continue;
          const size = (await stat(file)).size;
          // Rows Ferry added carry their digest; only rows without one are hashed here.
          const sha256 = digests.get(file) ?? (await sha256File(file)).sha256;
          manifest.files.push({ rel: fileRel, sha256, size_bytes: size });
          const link = join(staging, WEIGHTS_DIR, fileRel);
          await mkdir(dirname(link), { recursive: true });
          await symlink(file, link);
        }
      }
    }
    return manifest;
  }

  async importFrom(file: string, options: ImportOptions = {}): Promise<ImportSummary> {
    const staging = await this.makeStaging();
    const source = createReadStream(file);
    const moves: Array<{ staged: string; dest: string; backup?: string }> = [];
    let done = false;
    try {
      const { files } = await safeExtract(source, { dest: staging, ...this.deps.limits });
      const manifest = await readManifest(staging);
      const rows = parseRegistry(await readFile(join(staging, 'registry.toml'), 'utf8'), 'registry.toml (in the export)');
      verifyFiles(manifest, files);
      const pathMap = new Map(manifest.paths.map((p) => [p.source_path, join(this.deps.modelRoot, safeRelativePath(p.rel))]));
      const imported = [...rows.models.values()].map((row) => rewritePaths(row, pathMap));
      for (const row of imported) await this.verifyRow(row, manifest.index_only);

      const current = await this.deps.registry.read();
      const wanted = imported.filter((row) => options.replace || !current.models.has(row.id));
      const neededFiles = new Set(wanted.flatMap((row) => rowPaths(row)));
      for (const f of manifest.files) {
        const dest = join(this.deps.modelRoot, safeRelativePath(f.rel));
        if (![...neededFiles].some((p) => p === dest || isWithin(p, dest))) continue;
        const plan = await this.planMove(join(staging, WEIGHTS_DIR, f.rel), dest, f, options.replace ?? false);
        if (plan) moves.push(plan);
      }
      // Content before index: every file is in place before the one registry write.
      for (const move of moves) await applyMove(move);
      const summary = await this.deps.registry.mutate((draft) => {
        const out: ImportSummary = { added: [], replaced: [], skipped: [], files: moves.length };
        for (const row of imported) {
          const had = draft.has(row.id);
          if (had && !options.replace) {
            out.skipped.push(row.id);
            continue;
          }
          draft.set(row);
          (had ? out.replaced : out.added).push(row.id);
        }
        return out;
      });
      done = true;
      for (const move of moves) if (move.backup) await rm(move.backup, { force: true });
      return summary;
    } catch (err) {
      if (!done) for (const move of moves.reverse()) await undoMove(move, this.deps.modelRoot);
      throw err;
    } finally {
      source.destroy();
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** Staging lives in the model root so the final renames stay on one filesystem. */
  private async makeStaging(): Promise<string> {
    await mkdir(this.deps.modelRoot, { recursive: true });
    return mkdtemp(join(this.deps.modelRoot, '.ferry-import-'));
  }

  /**
   * Index-only rows name files that must already be on this machine (a shared model dir);
   * those are hashed here, so a row is never added for weights that are missing or different.
   */
  private async verifyRow(row: RegistryEntry, indexOnly: boolean): Promise<void> {
    if (!isValidModelId(row.id)) throw new FerryError('registry.import_invalid', `export has an invalid model id ${JSON.stringify(row.id)}`);
    if (!indexOnly) return;
    for (const [path, expected] of recordedDigests(row)) {
      let actual: string;
      try {
        actual = (await sha256File(path)).sha256;
      } catch {
        throw new FerryError('registry.import_invalid', `row "${row.id}": ${path} is not on this machine`, { hint: 'import a full export (without --index-only) to bring the weights along' });
      }
      if (actual !== expected) throw checksumError(`row "${row.id}": ${path}`, expected, actual);
    }
  }

  /** Where a staged file goes; undefined when an identical file is already there. */
  private async planMove(staged: string, dest: string, f: ExportManifest['files'][number], replace: boolean): Promise<{ staged: string; dest: string; backup?: string } | undefined> {
    let existing;
    try {
      existing = await lstat(dest);
    } catch (err) {
      if (isErrnoException(err) && err.code === 'ENOENT') return { staged, dest };
      throw err;
    }
    if (existing.isFile() && existing.size === f.size_bytes && (await sha256File(dest)).sha256 === f.sha256) return undefined;
    if (!replace) {
      throw new FerryError('model.exists', `${dest} already exists with different content`, { hint: 'pass --replace to overwrite it (the old file is restored if the import fails)' });
    }
    return { staged, dest, backup: `${dest}.ferry-backup-${process.pid}-${Date.now()}` };
  }
}

async function applyMove(move: { staged: string; dest: string; backup?: string }): Promise<void> {
  await mkdir(dirname(move.dest), { recursive: true });
  if (move.backup) await rename(move.dest, move.backup);
  await rename(move.staged, move.dest);
  await fsyncDirectory(dirname(move.dest));
}

async function undoMove(move: { staged: string; dest: string; backup?: string }, modelRoot: string): Promise<void> {
  try {
    await stat(move.staged);
    return; // never moved
  } catch {
    // moved (or staging gone): put things back
  }
  await rm(move.dest, { force: true });
  if (move.backup) return void (await rename(move.backup, move.dest).catch(() => undefined));
  // Directories the move created go too; rmdir stops at the first one that holds anything else.
  for (let dir = dirname(move.dest); isWithin(modelRoot, dir); dir = dirname(dir)) {
    if (!(await rmdir(dir).then(() => true, () => false))) break;
  }
}

async function readManifest(dir: string): Promise<ExportManifest> {
  let manifest: ExportManifest;
  try {
    manifest = JSON.parse(await readFile(join(dir, EXPORT_MANIFEST), 'utf8')) as ExportManifest;
  } catch {
    throw new FerryError('registry.import_invalid', `not a Ferry registry export: ${EXPORT_MANIFEST} is missing or not JSON`);
  }
  if (manifest.format !== EXPORT_FORMAT || manifest.version !== 1 || !Array.isArray(manifest.files) || !Array.isArray(manifest.paths)) {
    throw new FerryError('registry.import_invalid', `unsupported export format ${JSON.stringify(manifest.format)} v${manifest.version}`);
  }
  return manifest;
}

/** Every file the manifest lists arrived, with the digest it was exported with (hashed while extracted). */
function verifyFiles(manifest: ExportManifest, extracted: Map<string, ExtractedFile>): void {
  for (const f of manifest.files) {
    const got = extracted.get(`${WEIGHTS_DIR}/${safeRelativePath(f.rel)}`);
    if (!got) throw new FerryError('registry.import_invalid', `export is missing ${f.rel}`);
    if (got.sha256 !== f.sha256) throw checksumError(f.rel, f.sha256, got.sha256);
  }
}

function checksumError(what: string, expected: string, actual: string): FerryError {
  return new FerryError('registry.import_invalid', `${what}: sha256 ${actual} does not match ${expected}; nothing was imported`, { details: { expected, actual } });
}

function rewritePaths(row: RegistryEntry, map: Map<string, string>): RegistryEntry {
  const move = (p: string) => map.get(p) ?? p;
  return { ...row, path: move(row.path), ...(row.files ? { files: row.files.map((f) => ({ ...f, path: move(f.path) })) } : {}) };
}

function rowPaths(row: RegistryEntry): string[] {
  return [...new Set([row.path, ...(row.files ?? []).map((f) => f.path).filter((p): p is string => typeof p === 'string')])];
}

/** The sha256 a row records for each of its files (the row's own for `path`, each shard's for `files`). */
function recordedDigests(row: RegistryEntry): Map<string, string> {
  const out = new Map<string, string>();
  if (typeof row.sha256 === 'string') out.set(row.path, row.sha256);
  for (const f of row.files ?? []) if (typeof f.path === 'string' && typeof f.sha256 === 'string') out.set(f.path, f.sha256);
  return out;
}

async function regularFilesUnder(path: string, id: string): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch {
    throw new FerryError('model.not_found', `row "${id}" names ${path}, which does not exist; the export would be incomplete`, { hint: 'remove or fix the row first, or use --index-only' });
  }
  if (info.isFile()) return [path];
  if (!info.isDirectory()) return [];
  const out: string[] = [];
  for (const e of await readdir(path, { withFileTypes: true, recursive: true })) {
    if (e.isFile()) out.push(join(e.parentPath, e.name));
  }
  return out.sort();
}

/** The rows in hal0's keyed form, as RegistryStore writes them. */
function serialiseRows(rows: RegistryEntry[]): string {
  const models: Record<string, unknown> = {};
  for (const { id, ...fields } of [...rows].sort((a, b) => (a.id < b.id ? -1 : 1))) models[id] = fields;
  return stringifyToml({ models }) + '\n';
}

