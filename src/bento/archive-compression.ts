import { Readable, type Duplex } from 'node:stream';
import { createGunzip, createGzip } from 'node:zlib';
import type * as Execa from 'execa';
import { lazyModule } from '../util/lazy-module.js';

const loadExeca = lazyModule<typeof Execa>('execa');
import { FerryError } from '../errors/ferry-error.js';

export type Compression = 'gzip' | 'xz' | 'none';

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const BZIP2_MAGIC = Buffer.from('BZh');
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const SNIFF_BYTES = 6;

/**
 * xz has no pure-JS implementation we trust, so the system binary does it, streaming.
 * The memory cap keeps a crafted header from asking xz for gigabytes of dictionary.
 */
const XZ_DECOMPRESS_ARGS = ['--decompress', '--stdout', '--memlimit-decompress=1GiB'];
const XZ_COMPRESS_ARGS = ['--compress', '--stdout', '-6', '--threads=1'];

/** Compression by magic bytes, never by file name (BentoML writes xz, Neutree gzip, both as .bentomodel). */
export function detectCompression(head: Buffer): Compression {
  if (head.subarray(0, 2).equals(GZIP_MAGIC)) return 'gzip';
  if (head.subarray(0, 6).equals(XZ_MAGIC)) return 'xz';
  if (head.subarray(0, 3).equals(BZIP2_MAGIC) || head.subarray(0, 4).equals(ZSTD_MAGIC)) {
    throw new FerryError('bento.invalid_archive', 'archive is bzip2 or zstd compressed; only gzip, xz or plain tar are read');
  }
  return 'none';
}

/**
 * The tar stream inside `source`, decompressed as its first bytes say. Reads only as much
 * as it needs to sniff; the rest flows through with backpressure, nothing is buffered whole.
 */
export async function decompressedTarStream(source: Readable, maxRawBytes = Infinity): Promise<{ stream: Readable; compression: Compression }> {
  const it = source[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let ended = false;
  while (head.length < SNIFF_BYTES) {
    const next = await it.next();
    if (next.done) {
      ended = true;
      break;
    }
    head = Buffer.concat([head, Buffer.from(next.value as Uint8Array)]);
  }
  const compression = detectCompression(head);
  const raw = Readable.from(rest(head, ended ? undefined : it, maxRawBytes), { objectMode: false });
  if (compression === 'none') return { stream: raw, compression };
  const decoder: Duplex = compression === 'gzip' ? createGunzip() : xzDuplex(XZ_DECOMPRESS_ARGS);
  return { stream: pipeThrough(raw, decoder), compression };
}

/** `source` compressed for an archive: gzip by node:zlib, xz by the system binary. */
export function compressStream(source: Readable, compression: Exclude<Compression, 'none'>): Readable {
  return pipeThrough(source, compression === 'gzip' ? createGzip({ level: 6 }) : xzDuplex(XZ_COMPRESS_ARGS));
}

function xzDuplex(args: string[]): Duplex {
  // execa's duplex kills xz when destroyed and turns a non-zero exit into a stream error.
  return loadExeca().execa('xz', args, { buffer: false, stderr: 'pipe' }).duplex();
}

/** `a.pipe(b)` that also carries `a`'s errors into `b` and tears `a` down when `b` is destroyed. */
function pipeThrough(a: Readable, b: Duplex): Readable {
  a.on('error', (err) => b.destroy(err));
  b.on('close', () => a.destroy());
  a.pipe(b);
  return b;
}

/**
 * The sniffed head, then the rest of `source`. Stopping early does not destroy `source`: an HTTP
 * request body must stay open so the error response can still be written; its owner closes it.
 */
async function* rest(head: Buffer, it: AsyncIterator<unknown> | undefined, maxRawBytes: number): AsyncGenerator<Buffer> {
  let total = head.length;
  if (head.length > 0) yield head;
  if (!it) return;
  for (;;) {
    const next = await it.next();
    if (next.done) return;
    const chunk = Buffer.from(next.value as Uint8Array);
    total += chunk.length;
    // Bytes after the tar's end marker are never looked at by the parser; they must not stream forever either.
    if (total > maxRawBytes) throw new FerryError('bento.archive_too_large', `archive stream is longer than ${maxRawBytes} bytes`);
    yield chunk;
  }
}
