import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { FerryError, isErrnoException, isFerryError } from '../errors/ferry-error.js';
import { idToFileName } from '../registry/model-id.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { RegistryStore } from '../registry/registry-store.js';
import { downloadFile, type DownloadOptions, type DownloadTarget } from '../sources/huggingface/download-file.js';
import { downloadFileInThread } from '../sources/huggingface/download-in-thread.js';
import { downloadFileParallel, fetchedInParts, SLAB_BYTES, type ParallelSettings } from '../sources/huggingface/download-parallel.js';
import { ConnectionBudget, type TransferLimits } from '../sources/http/transfer-limits.js';
import { downloadWithFailover } from '../sources/huggingface/endpoint-pool.js';
import type { HfClient, HubFile } from '../sources/huggingface/hf-client.js';
import { baseName, pickQuant, selectFiles } from '../sources/huggingface/hf-ref.js';
import { fsyncDirectory } from '../stores/atomic-write.js';
import { assertFreeSpace } from '../stores/disk-space.js';
import type { PullFileStatus, PullJobData, PullProgress, PullResult } from '../queue/pull-status.js';
import { PullProgressTracker } from './pull-progress.js';
import { isWithin } from '../util/is-within.js';

export interface HfPullDeps {
  client: HfClient;
  registry: RegistryStore;
  pullRoot: string;
  diskMarginBytes: number;
  stallTimeoutMs: number;
  retryBaseMs?: number;
  /** O_DIRECT writes where the filesystem allows them. @defaultValue true */
  directIo?: boolean;
  /** Files at least this large are downloaded on a thread of their own (see downloadFileInThread); config `download_thread_min_bytes`. */
  threadMinBytes: number;
  /** Parallel parts: config `parallel_min_bytes`, `pull_connections`, `pull_memory_bytes`. Undefined: one stream per file. */
  parallel?: { minBytes: number; connections: number; memoryBytes: number };
  /** The worker's limits, shared by all its pulls (config `max_connections_per_host`, `max_bandwidth_bps`). */
  limits?: TransferLimits;
}

export interface PullJobContext {
  data: PullJobData;
  signal: AbortSignal;
  /** Persists progress (job.updateProgress); rejects nothing. */
  report: (p: PullProgress) => Promise<void>;
  log: (message: string) => void;
  workerName?: string;
}

interface PlannedFile {
  hub: HubFile;
  target: DownloadTarget;
  partPath: string;
  dest: string;
}

/**
 * A Hugging Face pull, worker side: resolve the files at one commit, check free space,
 * download each with resume and in-stream hashing, then install (content first: rename
 * into place, fsync) and only then commit the registry row.
 */
export async function runHfPull(deps: HfPullDeps, job: PullJobContext): Promise<PullResult> {
  const { data, signal } = job;
  const repo = data.hf_repo!;
  const hubFiles = await listWanted(deps.client, repo, data, signal);
  const plan = await planFiles(deps, job, hubFiles);
  const tracker = new PullProgressTracker(
    plan.map((p) => fileStatus(p)),
    job.report,
  );
  tracker.revision = plan[0]?.target.revision;
  tracker.worker = job.workerName;
  await tracker.flush();
  await checkFreeSpace(deps, plan);

  const tmpDir = join(deps.pullRoot, '.tmp');
  await mkdir(tmpDir, { recursive: true });
  const installed: string[] = [];
  try {
    await downloadAll(deps, job, plan, tracker);
    tracker.state = 'verifying';
    await tracker.flush();
    for (const file of plan) {
      await mkdir(dirname(file.dest), { recursive: true });
      await rename(file.partPath, file.dest);
      installed.push(file.dest);
      await fsyncDirectory(dirname(file.dest));
    }
    const entry = buildEntry(data, plan, tracker.files);
    await deps.registry.mutate((draft) => draft.set(entry));
    for (const file of plan) await rm(`${file.partPath}.json`, { force: true });
    tracker.state = 'completed';
    await tracker.flush({ finished_at: Math.floor(Date.now() / 1000), sha256: entry.sha256, path: entry.path });
    return { model_id: data.model_id, path: entry.path, sha256: entry.sha256, bytes: entry.size_bytes ?? 0 };
  } catch (err) {
    // Nothing half-installed may stay in the pull root; partial files stay in .tmp for a resume
    // unless the pull was cancelled or the bytes were wrong.
    for (const path of installed) await rm(path, { force: true });
    // A worker shutting down aborts too, but its partial files are what the next worker resumes.
    const cancelled = isFerryError(err) && err.code === 'pull.cancelled' && job.signal.reason !== 'shutdown';
    if (cancelled || (isFerryError(err) && (err.code === 'pull.checksum_mismatch' || err.code === 'pull.size_mismatch'))) {
      for (const file of plan) await removePartial(file.partPath);
    }
    throw err;
  }
}

/**
 * Downloads the pull's files at once, as many at a time as the pull has connections, sharing
 * them (`pull_connections`) and the memory budget (`pull_memory_bytes`). The first failure
 * stops the others (their partial files stay for a resume) and is the one thrown.
 */
async function downloadAll(deps: HfPullDeps, job: PullJobContext, plan: PlannedFile[], tracker: PullProgressTracker): Promise<void> {
  const connections = deps.parallel?.connections ?? 1;
  const budget = new ConnectionBudget(connections);
  const inParts = plan.filter((f) => fetchedInParts(f.target.size, deps.parallel && { ...deps.parallel, memoryBytes: 0 })).length;
  const memoryBytes = Math.max(2 * SLAB_BYTES, Math.floor((deps.parallel?.memoryBytes ?? 0) / Math.max(1, Math.min(inParts, connections))));
  const stop = new AbortController();
  const signal = AbortSignal.any([job.signal, stop.signal]);
  let failure: unknown;
  let next = 0;
  const runner = async () => {
    while (next < plan.length && failure === undefined) {
      const i = next++;
      try {
        const share = budget.join();
        try {
          await downloadOne(deps, job, plan[i], i, tracker, signal, { ...deps.parallel!, memoryBytes, pullBudget: share, limits: deps.limits });
        } finally {
          share.leave();
        }
      } catch (err) {
        failure ??= err;
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(plan.length, connections) }, runner));
  if (failure !== undefined) throw failure;
}

async function downloadOne(deps: HfPullDeps, job: PullJobContext, file: PlannedFile, i: number, tracker: PullProgressTracker, signal: AbortSignal, parallel: ParallelSettings): Promise<void> {
  const size = file.target.size ?? 0;
  const inParts = fetchedInParts(size, deps.parallel && parallel);
  // A thread cannot share the worker's limits: with a bandwidth cap, every file stays on the worker's loop.
  const onThread = !inParts && size >= deps.threadMinBytes && !deps.limits?.bandwidthBps;
  if (onThread) job.log(`${file.hub.path}: downloading on a thread of its own`);
  if (inParts) job.log(`${file.hub.path}: downloading in parts over up to ${parallel.connections} connections`);
  const options = {
    client: deps.client,
    target: file.target,
    partPath: file.partPath,
    signal,
    stallTimeoutMs: deps.stallTimeoutMs,
    retryBaseMs: deps.retryBaseMs,
    directIo: deps.directIo,
    onBytes: (bytes: number) => tracker.setFileBytes(i, bytes),
    onEvent: (m: string) => job.log(`${file.hub.path}: ${m}`),
  };
  const release = inParts ? undefined : await parallel.pullBudget!.acquire(signal);
  const host = new URL(deps.client.endpoint).host;
  const threadHost = onThread ? await deps.limits?.acquire(host, signal) : undefined;
  try {
    if (!inParts) tracker.setFileConnections(i, 1);
    // Each attempt goes to one endpoint of `hf_endpoints` (see downloadWithFailover).
    const download = (o: DownloadOptions) =>
      inParts
        ? downloadFileParallel({ ...o, parallel: { ...parallel, onConnections: (n) => tracker.setFileConnections(i, n) } })
        : onThread
          ? downloadFileInThread(o)
          : downloadFile({ ...o, limits: deps.limits });
    const result = await downloadWithFailover(download, options).catch((err) => {
      throw asDiskError(err);
    });
    tracker.files[i] = { ...tracker.files[i], bytes_done: result.bytes, bytes_total: result.bytes, sha256: result.sha256, verified_by: result.verifiedBy };
    if (result.verifiedBy !== 'sha256') job.log(`${file.hub.path}: the hub has no sha256 for this file (kept in git); verified by ${result.verifiedBy}`);
  } finally {
    tracker.setFileConnections(i, 0);
    threadHost?.();
    release?.();
  }
}

async function listWanted(client: HfClient, repo: string, data: PullJobData, signal: AbortSignal): Promise<HubFile[]> {
  const files = await client.listFiles(repo, data.revision ?? 'main', signal);
  const patterns = data.hf_files ?? [];
  const quant = patterns.length === 1 && patterns[0].startsWith('quant:') ? patterns[0].slice(6) : undefined;
  if (patterns.length === 0 || quant !== undefined) return pickQuant(files, quant, repo);
  return selectFiles(files, patterns, repo);
}

async function planFiles(deps: HfPullDeps, job: PullJobContext, hubFiles: HubFile[]): Promise<PlannedFile[]> {
  const { data, signal } = job;
  const repo = data.hf_repo!;
  const snapshot = await deps.registry.read();
  const multiDir = hubFiles.length > 1 && !hubFiles.every((f) => f.path.toLowerCase().endsWith('.gguf'));
  let commit: string | undefined;
  const plan: PlannedFile[] = [];
  for (const hub of hubFiles) {
    // Pin every file to the commit the first one resolved to, so shards never mix revisions.
    const resolved = await deps.client.resolveFile(repo, commit ?? data.revision ?? 'main', hub.path, signal);
    commit ??= resolved.commit;
    const sha256 = (hubFiles.length === 1 && data.expected_sha256) || resolved.sha256 || hub.sha256;
    if (data.expected_sha256 && hubFiles.length === 1 && resolved.sha256 && resolved.sha256 !== data.expected_sha256) {
      throw new FerryError('pull.checksum_mismatch', `${hub.path}: the hub's sha256 ${resolved.sha256} is not the requested ${data.expected_sha256}`, {
        details: { expected: data.expected_sha256, found: resolved.sha256 },
      });
    }
    const target: DownloadTarget = {
      repo,
      revision: commit ?? data.revision ?? 'main',
      path: hub.path,
      size: resolved.size ?? hub.size,
      sha256,
      gitSha1: sha256 ? undefined : resolved.gitSha1 ?? hub.gitSha1,
    };
    const dest = destinationFor(deps.pullRoot, data.model_id, hub.path, multiDir, snapshot.models);
    plan.push({ hub, target, dest, partPath: partialPathFor(deps.pullRoot, data.model_id, hub.path) });
  }
  return plan;
}

/**
 * Where a pull's file grows while it downloads. The Hub mirror follows this file to stream
 * bytes to its clients as they land (src/mirror/pull-through.ts), so it is the one place that names it.
 */
export function partialPathFor(pullRoot: string, modelId: string, hubPath: string): string {
  return join(pullRoot, '.tmp', `${idToFileName(modelId)}--${idToFileName(hubPath)}.part`);
}

/**
 * GGUFs (single or split) land as `<pull_root>/<file>` as hal0 expects; other multi-file models
 * get a directory of their own. A name another model's row already uses goes under `<id>/`.
 */
function destinationFor(pullRoot: string, modelId: string, path: string, multiDir: boolean, models: ReadonlyMap<string, RegistryEntry>): string {
  if (multiDir) return join(pullRoot, idToFileName(modelId), ...path.split('/'));
  const flat = join(pullRoot, baseName(path));
  for (const entry of models.values()) {
    if (entry.id === modelId) continue;
    if (entry.path === flat || entry.files?.some((f) => f.path === flat)) return join(pullRoot, idToFileName(modelId), baseName(path));
  }
  return flat;
}

async function checkFreeSpace(deps: HfPullDeps, plan: PlannedFile[]): Promise<void> {
  let remaining = 0;
  for (const file of plan) {
    const have = await stat(file.partPath).then((s) => s.size, () => 0);
    remaining += Math.max(0, (file.target.size ?? 0) - have);
  }
  await assertFreeSpace(deps.pullRoot, remaining, deps.diskMarginBytes);
}

function buildEntry(data: PullJobData, plan: PlannedFile[], files: PullFileStatus[]): RegistryEntry {
  const first = plan[0];
  const multiDir = plan.length > 1 && !plan.every((p) => p.hub.path.toLowerCase().endsWith('.gguf'));
  const total = files.reduce((n, f) => n + f.bytes_total, 0);
  const isGguf = first.hub.path.toLowerCase().endsWith('.gguf');
  return {
    id: data.model_id,
    path: multiDir ? dirname(first.dest) : first.dest,
    size_bytes: total,
    ...(files[0].sha256 ? { sha256: files[0].sha256 } : {}),
    hf_repo: data.hf_repo,
    hf_filename: first.hub.path,
    ...(first.target.revision && /^[0-9a-f]{40}$/.test(first.target.revision) ? { revision: first.target.revision } : {}),
    backends: isGguf ? ['llama.cpp'] : [],
    capabilities: ['chat'],
    ...(plan.length > 1 ? { files: plan.map((p, i) => ({ path: p.dest, sha256: files[i].sha256, size_bytes: files[i].bytes_total })) } : {}),
    created_at: new Date().toISOString(),
  };
}

function fileStatus(p: PlannedFile): PullFileStatus {
  return {
    hf_filename: p.hub.path,
    kind: /mmproj/i.test(p.hub.path) ? 'mmproj' : 'model',
    dest: p.dest,
    bytes_total: p.target.size ?? 0,
    bytes_done: 0,
    ...(p.target.sha256 ? { expected_sha256: p.target.sha256 } : {}),
  };
}

function asDiskError(err: unknown): unknown {
  if (isErrnoException(err) && (err.code === 'ENOSPC' || err.code === 'EDQUOT')) {
    return new FerryError('pull.disk_full', 'the disk filled up during the download; the partial file is kept for a resume', { cause: err });
  }
  return err;
}

async function removePartial(partPath: string): Promise<void> {
  await rm(partPath, { force: true });
  await rm(`${partPath}.json`, { force: true });
  await rm(`${partPath}.json.tmp`, { force: true });
}

/** Partial files nobody resumed for a day are removed (hal0 does the same). */
export async function cleanStalePartials(pullRoot: string, maxAgeMs = 24 * 60 * 60 * 1000): Promise<string[]> {
  const dir = join(pullRoot, '.tmp');
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.endsWith('.part') && !name.endsWith('.part.json') && !name.endsWith('.part.json.tmp')) continue;
    const path = join(dir, name);
    const info = await stat(path).catch(() => undefined);
    if (info && Date.now() - info.mtimeMs > maxAgeMs && isWithin(dir, path)) {
      await rm(path, { force: true });
      removed.push(path);
    }
  }
  return removed;
}
