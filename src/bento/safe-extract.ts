import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import type { Readable } from 'node:stream';
import type * as Tar from 'tar';
import type { ReadEntry } from 'tar';
import { lazyModule } from '../util/lazy-module.js';

const loadTar = lazyModule<typeof Tar>('tar');
import { FerryError } from '../errors/ferry-error.js';
import { describe } from '../registry/model-id.js';
import { decompressedTarStream, type Compression } from './archive-compression.js';
import { diskFullError, isDiskFull } from '../stores/disk-space.js';

export interface SafeExtractOptions {
  /** An existing, empty directory to extract into. The caller removes it on failure. */
  dest: string;
  /** Refuse the archive once its entries declare (or deliver) more bytes than this in total. */
  maxBytes: number;
  /** Refuse the archive at its `maxEntries + 1`-th entry. */
  maxEntries: number;
  /** Free space at `dest` when extraction starts: files declaring more are model.insufficient_disk. */
  freeBytes?: number;
}

export interface ExtractedFile {
  sha256: string;
  size: number;
}

export interface ExtractResult {
  /** Regular files by their relative path (no leading `./`), hashed while they were written. */
  files: Map<string, ExtractedFile>;
  entries: number;
  bytes: number;
  compression: Compression;
}

const FILE_TYPES = new Set(['File', 'OldFile', 'ContiguousFile']);

/**
 * Extracts a (gzip, xz or plain) tar stream into `dest`, refusing rather than skipping
 * anything unsafe: absolute paths, `..`, links, devices, FIFOs, sparse and other special
 * entries, and archives over the byte or entry cap. Only regular files (mode masked to
 * 0644/0755) and directories are written. Because no link is ever created, no path can lead
 * outside `dest`. On refusal every open file is closed before this rejects, so the caller's
 * `rm(dest)` is the last write.
 */
export async function safeExtract(source: Readable, options: SafeExtractOptions): Promise<ExtractResult> {
  // Headers and padding add at most ~1.5 KiB per entry on top of the content itself.
  const maxRawBytes = options.maxBytes + options.maxEntries * 1536 + (1 << 20);
  const { stream, compression } = await decompressedTarStream(source, maxRawBytes);
  const state = new ExtractState(options);
  const parser = new (loadTar().Parser)({ strict: true, brotli: false, zstd: false, onReadEntry: (entry) => state.onEntry(entry) });
  // "Refuse, don't skip": the parser skips oversized meta headers and unsupported entries; we refuse them.
  parser.on('ignoredEntry', (entry: ReadEntry) => state.fail(unsafe(`unsupported entry ${describe(entry.path)} (${entry.type})`)));
  parser.on('error', (err: Error) => state.fail(new FerryError('bento.invalid_archive', `not a valid tar archive: ${err.message}`, { cause: err })));
  state.onFail = (err) => {
    parser.abort(err);
    stream.destroy();
  };
  const parsed = new Promise<void>((resolve) => {
    parser.on('end', resolve);
    parser.on('close', resolve);
    parser.on('abort', resolve);
  });
  try {
    for await (const chunk of stream) {
      if (state.failure) break;
      if (!parser.write(chunk as Buffer)) await Promise.race([new Promise((r) => parser.once('drain', r)), state.failed]);
    }
    if (!state.failure) {
      parser.end();
      await Promise.race([parsed, state.failed]);
    }
  } catch (err) {
    state.fail(state.failure ?? decompressError(err, compression));
  } finally {
    await state.settle();
  }
  if (state.failure) throw state.failure;
  return { files: state.files, entries: state.entries, bytes: state.bytes, compression };
}

class ExtractState {
  readonly files = new Map<string, ExtractedFile>();
  entries = 0;
  bytes = 0;
  declaredBytes = 0;
  failure?: Error;
  onFail?: (err: Error) => void;
  readonly failed: Promise<void>;
  private resolveFailed!: () => void;
  private readonly open = new Set<{ ws: WriteStream; closed: Promise<void> }>();

  constructor(private readonly options: SafeExtractOptions) {
    this.failed = new Promise((r) => (this.resolveFailed = r));
  }

  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    for (const { ws } of this.open) ws.destroy();
    this.onFail?.(err);
    this.resolveFailed();
  }

  /** Waits for every file this extraction opened to be closed, whatever happened. */
  async settle(): Promise<void> {
    await Promise.all([...this.open].map((f) => f.closed));
  }

  onEntry(entry: ReadEntry): void {
    if (this.failure) return void entry.resume();
    try {
      this.accept(entry);
    } catch (err) {
      entry.resume();
      this.fail(err as Error);
    }
  }

  private accept(entry: ReadEntry): void {
    this.entries += 1;
    if (this.entries > this.options.maxEntries) {
      throw new FerryError('bento.archive_too_large', `archive has more than ${this.options.maxEntries} entries`, {
        hint: 'raise archive_max_entries in config.toml if this archive is trusted',
      });
    }
    const rel = safeRelativePath(entry.path);
    if (entry.type === 'Directory') {
      if (rel !== '') mkdirSync(join(this.options.dest, rel), { recursive: true, mode: 0o755 });
      return void entry.resume();
    }
    if (!FILE_TYPES.has(entry.type)) throw unsafe(`${describe(entry.path)} is a ${entry.type}; only regular files and directories are extracted`);
    if (rel === '') throw unsafe('a file entry has an empty path');
    this.declaredBytes += entry.size;
    if (this.declaredBytes > this.options.maxBytes) throw tooLarge(this.options.maxBytes);
    if (this.options.freeBytes !== undefined && this.declaredBytes > this.options.freeBytes) throw diskFullError(this.options.dest, `the archive's files need ${this.declaredBytes}+ bytes, ${this.options.freeBytes} free`);
    this.writeFile(entry, rel);
  }

  private writeFile(entry: ReadEntry, rel: string): void {
    const target = join(this.options.dest, rel);
    mkdirSync(dirname(target), { recursive: true, mode: 0o755 });
    const mode = (entry.mode ?? 0o644) & 0o111 ? 0o755 : 0o644;
    // 'wx': a second entry with the same path is refused by the filesystem, not silently overwritten.
    const ws = createWriteStream(target, { flags: 'wx', mode });
    const record = { ws, closed: new Promise<void>((r) => ws.once('close', () => r())) };
    this.open.add(record);
    const hash = createHash('sha256');
    let size = 0;
    ws.on('error', (err) => this.fail(isDiskFull(err) ? diskFullError(this.options.dest, `writing ${describe(rel)}`) : unsafe(`cannot write ${describe(rel)}: ${(err as NodeJS.ErrnoException).code ?? err.message}`)));
    entry.on('data', (chunk: Buffer) => {
      size += chunk.length;
      this.bytes += chunk.length;
      if (this.bytes > this.options.maxBytes) return this.fail(tooLarge(this.options.maxBytes));
      hash.update(chunk);
      if (!ws.write(chunk)) {
        entry.pause();
        ws.once('drain', () => entry.resume());
      }
    });
    entry.on('end', () => {
      if (this.failure) return;
      this.files.set(rel, { sha256: hash.digest('hex'), size });
      ws.end();
    });
  }
}

/** The entry's path relative to the archive root: `./` prefixes dropped; '' for the root itself. */
export function safeRelativePath(path: string): string {
  if (path.includes('\0') || path.includes('\\')) throw unsafe(`path ${describe(path)} has a NUL or backslash`);
  if (isAbsolute(path)) throw unsafe(`absolute path ${describe(path)}`);
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw unsafe(`path ${describe(path)} climbs out with ".."`);
  return parts.join('/');
}

function unsafe(message: string): FerryError {
  return new FerryError('bento.unsafe_archive', `refused archive: ${message}`);
}

function tooLarge(max: number): FerryError {
  return new FerryError('bento.archive_too_large', `archive holds more than ${max} bytes`, {
    hint: 'raise archive_max_bytes in config.toml if this archive is trusted',
  });
}

function decompressError(err: unknown, compression: Compression): FerryError {
  if (err instanceof FerryError) return err;
  const what = compression === 'none' ? 'read' : `${compression}-decompress`;
  return new FerryError('bento.invalid_archive', `cannot ${what} the archive: ${(err as Error).message.split('\n')[0]}`, { cause: err });
}
