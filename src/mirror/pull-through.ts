import { open, stat, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PullQueue } from '../queue/pull-queue.js';
import { partialPathFor } from '../services/hf-pull.js';
import { mirrorJobId } from './mirror-fetch.js';
import type { MirrorStore } from './mirror-store.js';
import type { PullThrough } from './mirror-service.js';
import type { ResolvedHubFile } from './mirror-types.js';

export interface QueuePullThroughDeps {
  queue: PullQueue;
  store: MirrorStore;
  pullRoot: string;
  /** How often the job's state is read from Redis while following. @defaultValue 200 */
  pollMs?: number;
  /** No new byte and no finished job for this long: the client's connection is dropped. @defaultValue 120000 */
  stallMs?: number;
}

const READ_BYTES = 1 << 20;

/**
 * A file Ferry lacks: queued as a pull (deduplicated on the blob's etag, so one fetch however
 * many clients and API processes ask), and each client is streamed the bytes as they land by
 * following the pull's partial file. The last byte is held back until the pull has verified
 * the digest and committed the blob, so a client never sees a complete body of wrong bytes:
 * on a failed pull its stream errors and the connection is destroyed.
 */
export class QueuePullThrough implements PullThrough {
  constructor(private readonly deps: QueuePullThroughDeps) {}

  async open(file: ResolvedHubFile, start: number, end: number): Promise<Readable> {
    const modelId = mirrorJobId(file.etag);
    const { jobId } = await this.deps.queue.enqueue({
      model_id: modelId,
      source: 'mirror',
      hf_repo: file.record.id,
      hf_files: [file.entry.path],
      revision: file.record.sha,
      mirror: { etag: file.etag, size: file.size, ...(file.entry.lfs ? { sha256: file.entry.lfs.oid } : { git_sha1: file.entry.oid }) },
      requested_at: Date.now(),
    });
    const partPath = partialPathFor(this.deps.pullRoot, modelId, file.entry.path);
    return Readable.from(this.follow(jobId, partPath, this.deps.store.blobPath(file.etag), file.size, start, end), { objectMode: false });
  }

  private async *follow(jobId: string, partPath: string, blobPath: string, size: number, start: number, end: number): AsyncGenerator<Buffer> {
    const pollMs = this.deps.pollMs ?? 200;
    const stallMs = this.deps.stallMs ?? 120_000;
    let pos = start;
    let handle: FileHandle | undefined;
    let handlePath = '';
    let verified = false;
    let lastPoll = 0;
    let lastProgress = Date.now();
    try {
      while (pos < end) {
        if (!verified && Date.now() - lastPoll >= pollMs) {
          lastPoll = Date.now();
          const status = await this.deps.queue.statusOfJob(jobId);
          if (!status || status.state === 'failed' || status.state === 'cancelled') {
            throw new Error(`the upstream fetch ${status ? status.state : 'disappeared'}${status?.error_code ? ` (${status.error_code})` : ''}`);
          }
          if (status.state === 'completed') verified = true;
        }
        // Verified: read the committed blob (the same inode as the partial, renamed). Not yet: the partial, short of its last byte.
        const want = verified ? blobPath : partPath;
        if (handlePath !== want) {
          await handle?.close();
          handle = await open(want, 'r').catch(() => undefined);
          handlePath = handle ? want : '';
          if (!handle && verified) throw new Error('the fetched blob is missing');
        }
        const limit = verified ? end : Math.min(end, size - 1);
        const available = handle ? Math.min((await handle.stat()).size, limit) : 0;
        if (available > pos) {
          const buffer = Buffer.allocUnsafe(Math.min(READ_BYTES, available - pos));
          const { bytesRead } = await handle!.read(buffer, 0, buffer.length, pos);
          if (bytesRead > 0) {
            pos += bytesRead;
            lastProgress = Date.now();
            yield bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead);
            continue;
          }
        }
        if (Date.now() - lastProgress > stallMs) throw new Error('the upstream fetch made no progress');
        if (handle && !verified && (await sameFile(handle, partPath)) === false) handlePath = ''; // reopen the new partial
        await sleep(verified ? 0 : 25);
      }
    } finally {
      await handle?.close();
    }
  }
}

/** False when the partial at `path` was replaced by a new file (a restarted download): follow the new one. */
async function sameFile(handle: FileHandle, path: string): Promise<boolean | undefined> {
  const [a, b] = await Promise.all([handle.stat(), stat(path).catch(() => undefined)]);
  if (!b) return undefined;
  return a.ino === b.ino && a.dev === b.dev;
}
