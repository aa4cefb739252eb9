import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FerryError } from '../../errors/ferry-error.js';
import type { HfClient } from './hf-client.js';
import { RetryableHubError } from './hub-errors.js';
import { throttledSink, type TransferLimits } from '../http/transfer-limits.js';
import { appendToFile } from '../../stores/append-stream-to-file.js';
import { readPartialRecord, recordOf, sameFile, validRanges } from './partial-record.js';

export interface DownloadTarget {
  repo: string;
  /** The commit (X-Repo-Commit) so every resumed range comes from the same content. */
  revision: string;
  path: string;
  size?: number;
  sha256?: string;
  /** Git blob sha1, the only digest the Hub has for small files kept in git. */
  gitSha1?: string;
}

export interface DownloadOptions {
  client: HfClient;
  target: DownloadTarget;
  /** `<pull_root>/.tmp/<name>.part`; `<name>.part.json` beside it is the resume record. */
  partPath: string;
  signal: AbortSignal;
  /** No byte for this long: abort the request and resume it (not counted as a failure). @defaultValue 30000 */
  stallTimeoutMs?: number;
  /** Consecutive failed attempts without progress before giving up. @defaultValue 6 */
  maxAttempts?: number;
  /** First backoff; doubles to 8x. The Hub's clients use 1 s. @defaultValue 1000 */
  retryBaseMs?: number;
  onBytes?: (bytesDone: number) => void;
  /** Write with O_DIRECT where the filesystem allows it (config `direct_io`). @defaultValue true */
  directIo?: boolean;
  /** Told about resumes, retries and restarts (for the job log). */
  onEvent?: (message: string) => void;
  /** The worker's connection and bandwidth limits (not across a download thread: see runHfPull). */
  limits?: TransferLimits;
}

export interface DownloadResult {
  bytes: number;
  sha256: string;
  /** Which digest the Hub gave us to check against. */
  verifiedBy: 'sha256' | 'git-sha1' | 'none';
}

class StallError extends Error {}

/**
 * Downloads one file into `partPath`, hashing in the same pass, resuming with Range after
 * any interruption (in this process or, through the partial file and its resume record, in
 * another worker). Verifies size and digest at the end; a mismatch deletes the partial and
 * is final, so it is never retried into a loop.
 */
export async function downloadFile(opts: DownloadOptions): Promise<DownloadResult> {
  const { target, partPath, signal } = opts;
  const recordPath = `${partPath}.json`;
  const maxAttempts = opts.maxAttempts ?? 6;
  const baseMs = opts.retryBaseMs ?? 1000;
  await keepOrDiscardPartial(partPath, recordPath, target, opts.onEvent);
  await writeFile(recordPath, JSON.stringify(recordOf(target)));

  let hashes = await hashPrefix(partPath, target, signal);
  let failures = 0;
  let restartedOn416 = false;
  for (;;) {
    throwIfAborted(signal);
    hashes = await alignToHashedPrefix(partPath, target, hashes, signal);
    const have = hashes.bytes;
    if (target.size !== undefined && have === target.size) break;
    if (target.size !== undefined && have > target.size) {
      await discard(partPath);
      hashes = newHashes(target);
      continue;
    }
    try {
      const done = await fetchRange(opts, hashes);
      if (done === 'restart') {
        opts.onEvent?.('server ignored the Range request: starting over from byte 0');
        await truncate(partPath, 0);
        hashes = newHashes(target);
        continue;
      }
      if (done === 'range-not-satisfiable') {
        if (restartedOn416) throw new FerryError('source.bad_response', `${target.path}: the server refused every range (416)`);
        opts.onEvent?.('416 for the partial file: discarding it and starting over');
        restartedOn416 = true;
        await discard(partPath);
        hashes = newHashes(target);
        continue;
      }
      break; // the body ended normally
    } catch (err) {
      if (signal.aborted) throw cancelled();
      const progressed = (await fileSize(partPath)) > have;
      if (err instanceof StallError) {
        opts.onEvent?.(`no bytes for ${(opts.stallTimeoutMs ?? 30_000) / 1000} s: resuming`);
      } else if (err instanceof RetryableHubError || isNetworkError(err)) {
        failures = progressed ? 1 : failures + 1;
        if (failures >= maxAttempts) {
          throw new FerryError('source.unavailable', `${target.path}: giving up after ${failures} failed attempts: ${(err as Error).message}`, { cause: err });
        }
        const waitMs = err instanceof RetryableHubError && err.retryAfterS !== undefined ? Math.min(err.retryAfterS * 1000, 120_000) : Math.min(baseMs * 2 ** (failures - 1), baseMs * 8);
        opts.onEvent?.(`${(err as Error).message}; retrying in ${(waitMs / 1000).toFixed(1)} s`);
        await sleep(waitMs, undefined, { signal }).catch(() => undefined);
      } else {
        throw err;
      }
      // A failed write may have lost bytes that were already hashed (re-hash what is on disk); more
      // bytes than were hashed were written by nobody we know of (cut back to the hashed prefix).
      hashes = await alignToHashedPrefix(partPath, target, hashes, signal);
    }
  }
  return verify(partPath, recordPath, target, hashes);
}

/**
 * Bytes land where they are hashed: before each request the partial file is cut back to the
 * hashed prefix (a write that failed half-way, or anything else, may have left more), so the
 * Range asked for and the offset written at are the same. A file shorter than what was hashed
 * is re-hashed from disk.
 */
async function alignToHashedPrefix(partPath: string, target: DownloadTarget, hashes: Hashes, signal: AbortSignal): Promise<Hashes> {
  const onDisk = await fileSize(partPath);
  if (onDisk === hashes.bytes) return hashes;
  if (onDisk > hashes.bytes) {
    await truncate(partPath, hashes.bytes);
    return hashes;
  }
  return hashPrefix(partPath, target, signal);
}

export interface Hashes {
  sha256: Hash;
  sha1?: Hash;
  bytes: number;
}

export function newHashes(target: DownloadTarget): Hashes {
  // Git's blob sha1 covers a "blob <size>\0" header before the content.
  const sha1 = !target.sha256 && target.gitSha1 && target.size !== undefined ? createHash('sha1').update(`blob ${target.size}\0`) : undefined;
  return { sha256: createHash('sha256'), sha1, bytes: 0 };
}

/** Fetch from the current end of the partial file to the end; hashes and writes in one pass. */
async function fetchRange(opts: DownloadOptions, hashes: Hashes): Promise<'ok' | 'restart' | 'range-not-satisfiable'> {
  const { target, partPath, signal } = opts;
  const start = hashes.bytes;
  const release = await opts.limits?.acquire(new URL(opts.client.endpoint).host, signal);
  try {
    return await fetchRangeHeld(opts, hashes, start);
  } finally {
    release?.();
  }
}

async function fetchRangeHeld(opts: DownloadOptions, hashes: Hashes, start: number): Promise<'ok' | 'restart' | 'range-not-satisfiable'> {
  const { target, partPath, signal } = opts;
  const { body, status, headers } = await opts.client.openDownload(target.repo, target.revision, target.path, start, signal);
  if (status === 416) {
    body.destroy();
    return 'range-not-satisfiable';
  }
  if (start > 0) {
    const range = String(headers['content-range'] ?? '');
    if (status === 200 || !range.startsWith(`bytes ${start}-`)) {
      body.destroy();
      return 'restart';
    }
  }
  const stallMs = opts.stallTimeoutMs ?? 30_000;
  let lastByteAt = Date.now();
  const watchdog = setInterval(() => {
    if (Date.now() - lastByteAt > stallMs) body.destroy(new StallError('stalled'));
  }, Math.min(1000, stallMs / 4));
  try {
    // Hashed as the bytes arrive, in the memory they are written from. appendToFile writes every
    // received byte before it returns or throws, so the hash covers exactly the file, unless a
    // write failed: then the caller re-hashes what is on disk.
    const onData = (bytes: Buffer) => {
      lastByteAt = Date.now();
      hashes.sha256.update(bytes);
      hashes.sha1?.update(bytes);
      hashes.bytes += bytes.length;
      opts.onBytes?.(hashes.bytes);
    };
    await appendToFile(partPath, (sink) => body.readInto(throttledSink(sink, opts.limits), onData), { direct: opts.directIo });
  } finally {
    clearInterval(watchdog);
    body.destroy(); // the connection is done with, or never read if the file could not be opened
  }
  if (target.size !== undefined && hashes.bytes < target.size) {
    // A body that ended early without an error (a proxy closing cleanly): resume.
    throw new RetryableHubError(`${target.path}: connection closed at ${hashes.bytes} of ${target.size} bytes`);
  }
  return 'ok';
}

export async function verify(partPath: string, recordPath: string, target: DownloadTarget, hashes: Hashes): Promise<DownloadResult> {
  const sha256 = hashes.sha256.digest('hex');
  const fail = async (code: 'pull.checksum_mismatch' | 'pull.size_mismatch', message: string, details: Record<string, unknown>) => {
    await discard(partPath);
    await rm(recordPath, { force: true });
    return new FerryError(code, message, { details });
  };
  if (target.size !== undefined && hashes.bytes !== target.size) {
    throw await fail('pull.size_mismatch', `${target.path}: got ${hashes.bytes} bytes, expected ${target.size}`, { expected: target.size, found: hashes.bytes });
  }
  if (target.sha256 && sha256 !== target.sha256) {
    throw await fail('pull.checksum_mismatch', `${target.path}: sha256 ${sha256} does not match the expected ${target.sha256}`, { expected: target.sha256, found: sha256 });
  }
  if (!target.sha256 && hashes.sha1) {
    const sha1 = hashes.sha1.digest('hex');
    if (sha1 !== target.gitSha1) {
      throw await fail('pull.checksum_mismatch', `${target.path}: git sha1 ${sha1} does not match the expected ${target.gitSha1}`, { expected: target.gitSha1, found: sha1 });
    }
  }
  // Durable before it is renamed into place and indexed; and, on the same descriptor, exactly the
  // bytes that were hashed (the caller holds the part lock, so nothing else can have written it).
  const handle = await open(partPath, 'r');
  try {
    const onDisk = (await handle.stat()).size;
    if (onDisk !== hashes.bytes) {
      throw await fail('pull.size_mismatch', `${target.path}: the partial file holds ${onDisk} bytes, ${hashes.bytes} were hashed`, { expected: hashes.bytes, found: onDisk });
    }
    await handle.sync();
  } finally {
    await handle.close();
  }
  return { bytes: hashes.bytes, sha256, verifiedBy: target.sha256 ? 'sha256' : hashes.sha1 ? 'git-sha1' : 'none' };
}

/**
 * A partial from another revision or another expected digest is useless: start over. One a
 * parallel download left (ranges, maybe with holes) is cut to its first contiguous range, which
 * is what a single stream continues from.
 */
async function keepOrDiscardPartial(partPath: string, recordPath: string, target: DownloadTarget, onEvent?: (m: string) => void): Promise<void> {
  const record = await readPartialRecord(recordPath);
  const size = await fileSize(partPath);
  if (size === 0) return;
  if (!sameFile(record, target)) {
    onEvent?.('discarding a partial file from a different revision');
    await discard(partPath);
    return;
  }
  if (record!.written) {
    const [first] = validRanges(record!, target.size ?? Infinity);
    const prefix = first && first[0] === 0 ? first[1] : 0;
    await truncate(partPath, prefix);
    onEvent?.(`resuming from byte ${prefix} (the first range a parallel download left)`);
    return;
  }
  onEvent?.(`resuming from byte ${size}`);
}

/** Re-hash what is already on disk (resume across processes: a hash state cannot be saved). */
async function hashPrefix(partPath: string, target: DownloadTarget, signal: AbortSignal): Promise<Hashes> {
  const hashes = newHashes(target);
  if ((await fileSize(partPath)) === 0) return hashes;
  await pipeline(
    createReadStream(partPath, { highWaterMark: 1 << 20 }),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hashes.sha256.update(chunk);
        hashes.sha1?.update(chunk);
        hashes.bytes += chunk.length;
      }
    },
    { signal },
  ).catch((err) => {
    if (signal.aborted) throw cancelled();
    throw err;
  });
  return hashes;
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

async function discard(partPath: string): Promise<void> {
  await rm(partPath, { force: true });
}

export function cancelled(): FerryError {
  return new FerryError('pull.cancelled', 'the pull was cancelled');
}

function throwIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw cancelled();
}

export function isNetworkError(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return typeof code === 'string' && /^(E[A-Z]+|ERR_STREAM_PREMATURE_CLOSE|ERR_GOT_REQUEST_ERROR|ERR_BODY_PARSE_FAILURE)$/.test(code) && code !== 'ENOSPC' && code !== 'EACCES' && code !== 'EROFS' && code !== 'EDQUOT';
}
