import { copyFile, mkdir, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FerryError, isErrnoException } from '../errors/ferry-error.js';
import type { PullResult } from '../queue/pull-status.js';
import { partialPathFor, type PullJobContext } from '../services/hf-pull.js';
import { downloadFile, type DownloadOptions } from '../sources/huggingface/download-file.js';
import { downloadFileInThread } from '../sources/huggingface/download-in-thread.js';
import type { HfClient } from '../sources/huggingface/hf-client.js';
import { downloadWithFailover } from '../sources/huggingface/endpoint-pool.js';
import { fsyncDirectory } from '../stores/atomic-write.js';
import type { MirrorStore } from './mirror-store.js';

export interface MirrorFetchDeps {
  client: HfClient;
  store: MirrorStore;
  pullRoot: string;
  stallTimeoutMs: number;
  retryBaseMs?: number;
  directIo?: boolean;
  threadMinBytes: number;
}

/** The model id of the queue job that fetches one blob: one pull per file across the cluster (BullMQ deduplication on it). */
export function mirrorJobId(etag: string): string {
  return `mirror-${etag}`;
}

/**
 * Worker side of a pull-through: one file into the mirror's blob store, through the same
 * resumable, verifying downloader as every pull. The bytes grow in the pull's usual partial
 * file (which streaming clients follow); only a verified file is renamed to `blobs/<etag>`.
 * No registry row is written: the mirror cache is not the registry.
 */
export async function runMirrorFetch(deps: MirrorFetchDeps, job: PullJobContext): Promise<PullResult> {
  const { data } = job;
  const file = data.mirror;
  const path = data.hf_files?.[0];
  if (!file || !path || !data.hf_repo || !data.revision) throw new FerryError('model.invalid_source', 'a mirror fetch needs a repo, commit, path and etag');
  const blob = deps.store.blobPath(file.etag);
  if ((await deps.store.blobSize(file.etag)) === file.size) return { model_id: data.model_id, path: blob, sha256: file.sha256, bytes: file.size };
  const partPath = partialPathFor(deps.pullRoot, data.model_id, path);
  await mkdir(dirname(partPath), { recursive: true });
  const started = Math.floor(Date.now() / 1000);
  let lastReport = 0;
  const report = (bytes: number) => {
    if (Date.now() - lastReport < 500 && bytes < file.size) return;
    lastReport = Date.now();
    void job.report({ state: 'running', bytes_total: file.size, bytes_downloaded: bytes, throughput_bps: 0, started_at: started, revision: data.revision, files: [{ hf_filename: path, kind: 'model', bytes_total: file.size, bytes_done: bytes }] });
  };
  const options: DownloadOptions = {
    client: deps.client,
    target: { repo: data.hf_repo, revision: data.revision, path, size: file.size, sha256: file.sha256, gitSha1: file.sha256 ? undefined : file.git_sha1 },
    partPath,
    signal: job.signal,
    stallTimeoutMs: deps.stallTimeoutMs,
    retryBaseMs: deps.retryBaseMs,
    directIo: deps.directIo,
    onBytes: report,
    onEvent: (m) => job.log(`${path}: ${m}`),
  };
  // A digest mismatch throws here with the partial already deleted: nothing is cached.
  const result = await downloadWithFailover(file.size >= deps.threadMinBytes ? downloadFileInThread : downloadFile, options);
  await mkdir(dirname(blob), { recursive: true });
  await moveInto(partPath, blob);
  await fsyncDirectory(dirname(blob));
  await rm(`${partPath}.json`, { force: true });
  await deps.store.writeBlobMeta({ etag: file.etag, size: file.size, repo: data.hf_repo, path, commit: data.revision });
  return { model_id: data.model_id, path: blob, sha256: result.sha256, bytes: result.bytes };
}

/** A rename keeps the inode, so clients still reading the partial read on; across file systems, a copy. */
async function moveInto(from: string, to: string): Promise<void> {
  try {
    await rename(from, to);
  } catch (err) {
    if (!isErrnoException(err) || err.code !== 'EXDEV') throw err;
    const tmp = `${to}.${process.pid}.tmp`;
    await copyFile(from, tmp);
    await rename(tmp, to);
    await rm(from, { force: true });
  }
}
