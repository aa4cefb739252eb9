import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { FerryError, isErrnoException, isFerryError } from '../errors/ferry-error.js';
import { partialPathFor } from '../sources/huggingface/partial-file.js';
/** The Hub mirror follows a pull's growing partial file (src/mirror/pull-through.ts). */
export { partialPathFor };
import { assertUnder } from '../sources/huggingface/listed-path.js';
import { installFiles, overlapsInstalled, type InstallStep } from '../stores/install-files.js';
import { acquirePartLock, type PartLock } from '../stores/part-lock.js';
import { lostOwnership } from '../queue/job-fence.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { RegistryStore } from '../registry/registry-store.js';
import { downloadFile, type DownloadOptions, type DownloadTarget } from '../sources/huggingface/download-file.js';
import { downloadFileInThread } from '../sources/huggingface/download-in-thread.js';
import { downloadFileParallel, fetchedInParts, SLAB_BYTES, type ParallelSettings } from '../sources/huggingface/download-parallel.js';
import { ConnectionBudget, type TransferLimits } from '../sources/http/transfer-limits.js';
import { downloadWithFailover } from '../sources/huggingface/endpoint-pool.js';
import type { HfClient, HubFile } from '../sources/huggingface/hf-client.js';
import { pickQuant, selectFiles } from '../sources/huggingface/hf-ref.js';
import { assertFreeSpace } from '../stores/disk-space.js';
import type { PullFileStatus, PullJobData, PullProgress, PullResult } from '../queue/pull-status.js';
import { PullProgressTracker } from './pull-progress.js';
import { sameSource } from './pull-source.js';
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
  /**
   * The job lock's duration (config `job_lock_ms`): a partial file's owner record goes stale
   * after it, and a second runner waits twice that for the part lock before giving the job back.
   * @defaultValue 30000
   */
  jobLockMs?: number;
  /** Test hook: runs before each install step (see installFiles); a throw fails that step. */
  beforeInstallStep?: (step: InstallStep, index?: number) => void | Promise<void>;
}

export interface PullJobContext {
  data: PullJobData;
  signal: AbortSignal;
  /** Persists progress (job.updateProgress); rejects nothing. */
  report: (p: PullProgress) => Promise<void>;
  log: (message: string) => void;
  workerName?: string;
  /**
   * Throws unless this worker still owns the job (its BullMQ lock token is current). Called
   * before anything irreversible: installing files, writing the row. Absent: nothing to prove.
   */
  proveOwnership?: () => Promise<void>;
}

interface PlannedFile {
  hub: HubFile;
  target: DownloadTarget;
  partPath: string;
  dest: string;
  /** The directory this pull installs into (see installDirFor). */
  installDir: string;
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
  const lockMs = deps.jobLockMs ?? 30_000;
  const locks: PartLock[] = [];
  try {
    await downloadAll(deps, job, plan, tracker, locks, lockMs);
    tracker.state = 'verifying';
    await tracker.flush();
    const entry = buildEntry(data, plan, tracker.files);
    await installFiles({
      files: plan.map((f) => ({ from: f.partPath, to: f.dest })),
      root: deps.pullRoot,
      proveOwnership: async () => {
        await job.proveOwnership?.();
        for (const [i, lock] of locks.entries()) if (!lock || !(await lock.held())) throw lostOwnership(`the partial file of ${plan[i].hub.path}`);
      },
      commit: () => commitRow(deps.registry, entry, plan.map((f) => f.dest), data),
      beforeStep: deps.beforeInstallStep,
      log: job.log,
    });
    for (const file of plan) await rm(`${file.partPath}.json`, { force: true });
    tracker.state = 'completed';
    await tracker.flush({ finished_at: Math.floor(Date.now() / 1000), sha256: entry.sha256, path: entry.path });
    return { model_id: data.model_id, path: entry.path, sha256: entry.sha256, bytes: entry.size_bytes ?? 0 };
  } catch (err) {
    // installFiles put any file it had moved back into .tmp: partial files stay for a resume
    // unless the pull was cancelled or the bytes were wrong. A worker shutting down, or one that
    // lost the job, aborts too, but its partial files are what the next runner resumes.
    const cancelled = job.signal.reason === 'cancel';
    if (cancelled || (isFerryError(err) && (err.code === 'pull.checksum_mismatch' || err.code === 'pull.size_mismatch'))) {
      for (const [i, file] of plan.entries()) await removePartialIfFree(file.partPath, locks[i]);
    }
    throw err;
  } finally {
    for (const lock of locks) await lock?.release(); // sparse when a download failed before others took their lock
  }
}

/**
 * Downloads the pull's files at once, as many at a time as the pull has connections, sharing
 * them (`pull_connections`) and the memory budget (`pull_memory_bytes`). The first failure
 * stops the others (their partial files stay for a resume) and is the one thrown.
 */
async function downloadAll(deps: HfPullDeps, job: PullJobContext, plan: PlannedFile[], tracker: PullProgressTracker, locks: PartLock[], lockMs: number): Promise<void> {
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
          // One runner per partial file: nothing below reads or writes it before this returns.
          const lock = await acquirePartLock(plan[i].partPath, { staleMs: lockMs, waitMs: 2 * lockMs, signal, log: (m) => job.log(`${plan[i].hub.path}: ${m}`) });
          locks[i] = lock;
          await downloadOne(deps, job, plan[i], i, tracker, AbortSignal.any([signal, lock.lost]), { ...deps.parallel!, memoryBytes, pullBudget: share, limits: deps.limits }).catch((err) => {
            if (lock.lost.aborted && !signal.aborted) throw lostOwnership(`the partial file of ${plan[i].hub.path}`);
            throw err;
          });
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
  const installDir = await installDirFor(deps.pullRoot, data.model_id, snapshot.models);
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
    const dest = assertUnder(installDir, hub.path, repo);
    plan.push({ hub, target, dest, installDir, partPath: partialPathFor(deps.pullRoot, data.model_id, hub.path) });
  }
  return plan;
}

/**
 * Each id owns its files: a pull installs into `<pull_root>/<id>/` (the id URL-encoded, so
 * `x:y` is `x%3Ay` and can never meet `x-y`), the files keeping their paths from the repo.
 * When that directory is taken (this id's current row lives there, i.e. a re-pull, or an older
 * row of any id names something inside it, or a stray file sits at its name), the pull
 * installs into `<pull_root>/<id>~<random>/` instead: `~` is in no id and in no older Ferry
 * layout, so the new files get names nothing else uses and the old ones stay until the new
 * row commits. Rows written by earlier versions (`<pull_root>/<file>`) stay where they are.
 */
export async function installDirFor(pullRoot: string, modelId: string, models: ReadonlyMap<string, RegistryEntry>): Promise<string> {
  const base = join(pullRoot, encodeURIComponent(modelId));
  const named = [...models.values()].some((e) => pathsOf(e).some((p) => sharesPath(p, base)));
  const info = await lstat(base).catch(() => undefined);
  if (!named && (!info || info.isDirectory())) return base;
  return `${base}~${randomBytes(4).toString('hex')}`;
}

/** Every path a row names: its path and its files'. */
function pathsOf(entry: RegistryEntry): string[] {
  return [entry.path, ...(entry.files ?? []).map((f) => f.path)].filter((p): p is string => typeof p === 'string').map((p) => resolve(p));
}

function sharesPath(a: string, b: string): boolean {
  return overlapsInstalled(a, [b]) || overlapsInstalled(b, [a]);
}

/**
 * The row write, under the registry's lock: refused with model.path_conflict if another row
 * names one of the new paths (two rows never share a file), and answers what the replaced row
 * named so installFiles can remove it once this has committed. A replaced directory that
 * another row's file sits in (an older layout could do that) is reduced to this row's own files.
 */
async function commitRow(registry: RegistryStore, entry: RegistryEntry, installed: string[], data: PullJobData): Promise<string[]> {
  return registry.mutate((draft) => {
    const current = draft.get(entry.id);
    // The API checked this when the pull started; the row may have changed since (ferry model add, another host).
    if (current && !data.replace && !sameSource(current, data)) {
      throw new FerryError('model.source_conflict', `"${entry.id}" was registered from other coordinates while this pull ran; nothing was replaced`, {
        hint: 'pull it under another id, or send { "replace": true }',
      });
    }
    const others = [...draft.values()].filter((e) => e.id !== entry.id);
    for (const other of others) {
      const clash = pathsOf(other).find((p) => installed.some((to) => sharesPath(p, resolve(to))));
      if (clash) {
        throw new FerryError('model.path_conflict', `"${other.id}" already names ${clash}; "${entry.id}" is not installed over it`, {
          details: { other_id: other.id, path: clash },
        });
      }
    }
    const old = draft.get(entry.id);
    draft.set(entry);
    if (!old) return [];
    const otherPaths = others.flatMap(pathsOf);
    const mine = pathsOf(old).filter((p) => !installed.some((to) => resolve(to) === p));
    return mine.filter((p) => !otherPaths.some((o) => overlapsInstalled(p, [o])));
  });
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
  // Split GGUFs: the row names the first shard (llama.cpp finds the rest beside it); other multi-file models: their directory.
  const multiDir = plan.length > 1 && !plan.every((p) => p.hub.path.toLowerCase().endsWith('.gguf'));

  const total = files.reduce((n, f) => n + f.bytes_total, 0);
  const isGguf = first.hub.path.toLowerCase().endsWith('.gguf');
  return {
    id: data.model_id,
    path: multiDir ? first.installDir : first.dest,
    size_bytes: total,
    ...(files[0].sha256 ? { sha256: files[0].sha256 } : {}),
    hf_repo: data.hf_repo,
    hf_filename: first.hub.path,
    ...(first.target.revision && /^[0-9a-f]{40}$/.test(first.target.revision) ? { revision: first.target.revision } : {}),
    backends: isGguf ? ['llama.cpp'] : [],
    capabilities: ['chat'],
    // hf_filename per file: what "same source" compares (the repo's file set), whatever the layout.
    ...(plan.length > 1 ? { files: plan.map((p, i) => ({ path: p.dest, hf_filename: p.hub.path, sha256: files[i].sha256, size_bytes: files[i].bytes_total })) } : {}),
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

/** Removes a partial this run holds, or one nobody holds (an earlier attempt's); never another runner's. */
async function removePartialIfFree(partPath: string, held: PartLock | undefined): Promise<void> {
  if (held) return removePartial(partPath);
  const lock = await acquirePartLock(partPath, { staleMs: 30_000, waitMs: 0 }).catch(() => undefined);
  if (!lock) return;
  try {
    await removePartial(partPath);
  } finally {
    await lock.release();
  }
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
