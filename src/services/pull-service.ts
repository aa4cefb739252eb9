import { stat } from 'node:fs/promises';
import { FerryError, isFerryError } from '../errors/ferry-error.js';
import { assertModelId } from '../registry/model-id.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { RegistryStore } from '../registry/registry-store.js';
import type { PullQueue } from '../queue/pull-queue.js';
import type { PullJobData, PullState, PullStatus } from '../queue/pull-status.js';
import type { HfClient } from '../sources/huggingface/hf-client.js';
import { assertFilePattern, assertRepoId, assertRevision, modelIdFromFileName, parseHfShorthand, pickQuant, selectFiles } from '../sources/huggingface/hf-ref.js';
import { assertFreeSpace } from '../stores/disk-space.js';
import type { FlmSource } from '../sources/flm/flm-source.js';
import { hasFlmTagShape } from '../registry/model-id.js';
import { coordinatesOf, rowRepoFiles, sameSource } from './pull-source.js';

export interface PullRequestBody {
  hf_repo?: string;
  hf_file?: string | string[];
  revision?: string;
  sha256?: string;
  /** Pull even though the id's row came from other coordinates; the new files replace it once they are installed. */
  replace?: boolean;
}

export interface PullStarted {
  /** 202 for a new or joined pull, 200 when the model is already present. */
  httpStatus: 200 | 202;
  id: string | null;
  model_id: string;
  state: PullState;
  source: 'hf' | 'flm';
  hf_repo?: string;
  hf_file?: string;
  status_url: string;
  resumed?: boolean;
  /** Set when the id was derived from an `hf.co/...` shorthand. */
  derived_from?: string;
}

/** Where a pull's coordinates may come from when the request has none (issue #4 adds the catalogue and FLM). */
export interface CoordinateLookup {
  (modelId: string): Promise<{ hf_repo: string; hf_file?: string | string[]; revision?: string } | undefined>;
}

export interface PullServiceDeps {
  queue: PullQueue;
  registry: RegistryStore;
  /** The API's own Hub client for pre-flight checks; it carries no token (workers hold that). */
  hub: HfClient;
  pullRoot: string;
  diskMarginBytes: number;
  catalogue?: CoordinateLookup;
  /** FLM, for `family:size` tags; absent: tags are not pullable here. */
  flm?: FlmSource;
}

const FINISHED: PullState[] = ['completed', 'failed', 'cancelled'];

/** Starting, watching and cancelling pulls; the API and CLI call this, workers do the work. */
export class PullService {
  constructor(private readonly deps: PullServiceDeps) {}

  /** `chain`: a slot swap waiting for this pull (the worker continues with verify and warm). */
  async start(rawRef: string, body: PullRequestBody = {}, chain?: PullJobData['chain']): Promise<PullStarted> {
    if (hasFlmTagShape(rawRef) && !body.hf_repo) return this.startFlm(rawRef, chain);
    const shorthand = parseHfShorthand(rawRef);
    const { request, bytes } = shorthand ? await this.fromShorthand(shorthand) : { request: await this.fromId(rawRef, body), bytes: undefined };
    const present = await this.presentEntry(request, body);
    if (present) {
      return { httpStatus: 200, id: null, model_id: present.id, state: 'completed', source: 'hf', hf_repo: present.hf_repo, hf_file: present.hf_filename, status_url: statusUrl(present.id), ...(shorthand ? { derived_from: rawRef } : {}) };
    }
    await this.preflight(request, bytes);
    const { jobId, resumed } = await this.deps.queue.enqueue(chain ? { ...request, chain } : request);
    if (resumed) await this.assertSameRequest(jobId, request);
    const status = await this.deps.queue.statusOfJob(jobId);
    return {
      httpStatus: 202,
      id: jobId,
      model_id: request.model_id,
      state: status?.state ?? 'queued',
      source: 'hf',
      hf_repo: request.hf_repo,
      hf_file: request.hf_files?.join(','),
      status_url: statusUrl(request.model_id),
      ...(resumed ? { resumed: true } : {}),
      ...(shorthand ? { derived_from: rawRef } : {}),
    };
  }

  /**
   * An FLM tag: refused before anything runs unless `flm list` knows it (FLM would silently
   * pull a default model); present when its row exists and FLM's directory is on disk.
   */
  private async startFlm(tag: string, chain?: PullJobData['chain']): Promise<PullStarted> {
    if (!this.deps.flm) throw new FerryError('source.flm_unavailable', `"${tag}" is an FLM tag, and FLM is not configured here`);
    await this.deps.flm.tagInfo(tag);
    const present = await this.deps.registry.get(tag);
    const base = { model_id: tag, source: 'flm' as const, status_url: statusUrl(tag) };
    if (present && present.metadata?.runtime === 'flm' && (await stat(present.path).then(() => true, () => false))) {
      return { httpStatus: 200, id: null, state: 'completed', ...base };
    }
    const { jobId, resumed } = await this.deps.queue.enqueue({ model_id: tag, source: 'flm', requested_at: Date.now(), ...(chain ? { chain } : {}) });
    const status = await this.deps.queue.statusOfJob(jobId);
    return { httpStatus: 202, id: jobId, state: status?.state ?? 'queued', ...base, ...(resumed ? { resumed: true } : {}) };
  }

  status(modelId: string): Promise<PullStatus> {
    return this.deps.queue.status(assertModelId(modelId));
  }

  cancel(modelId: string): Promise<PullStatus> {
    return this.deps.queue.cancel(assertModelId(modelId));
  }

  list(): Promise<PullStatus[]> {
    return this.deps.queue.list();
  }

  /** Workers attached to the pull queue now (any host), so a client can say when none is. */
  workerCount(): Promise<number> {
    return this.deps.queue.workerCount();
  }

  /**
   * Calls `emit` with the status at each change and at least every `heartbeatMs`, until the
   * pull finishes or `signal` aborts. Polls Redis, which every API process shares.
   */
  async watch(modelId: string, emit: (s: PullStatus) => void, signal: AbortSignal, opts = { pollMs: 250, heartbeatMs: 5000 }): Promise<void> {
    assertModelId(modelId);
    let last = '';
    let lastSent = 0;
    while (!signal.aborted) {
      const status = await this.deps.queue.status(modelId);
      const key = JSON.stringify({ ...status, elapsed_s: 0, eta_s: 0 });
      if (key !== last || Date.now() - lastSent >= opts.heartbeatMs) {
        emit(status);
        last = key;
        lastSent = Date.now();
      }
      if (FINISHED.includes(status.state)) return;
      await new Promise((r) => setTimeout(r, opts.pollMs));
    }
  }

  /** The shorthand's listing already names the files and their sizes: the pre-flight reuses them. */
  private async fromShorthand(ref: { repo: string; quant?: string }): Promise<{ request: PullJobData; bytes: number }> {
    const files = await this.deps.hub.listFiles(ref.repo, 'main');
    const chosen = pickQuant(files, ref.quant, ref.repo);
    const modelId = assertModelId(modelIdFromFileName(chosen[0].path));
    return {
      request: { model_id: modelId, source: 'hf', hf_repo: ref.repo, hf_files: chosen.map((f) => f.path), requested_at: Date.now() },
      bytes: chosen.reduce((n, f) => n + f.size, 0),
    };
  }

  private async fromId(rawId: string, body: PullRequestBody): Promise<PullJobData> {
    const modelId = assertModelId(rawId);
    let { hf_repo, hf_file, revision } = body;
    if (!hf_repo) {
      // The catalogue speaks for its ids, not whatever row sits under one: a row from another
      // repo then answers model.source_conflict instead of "already present".
      const known = (await this.deps.registry.get(modelId)) ?? undefined;
      const coords = (await this.deps.catalogue?.(modelId)) ?? (known?.hf_repo ? { hf_repo: known.hf_repo, hf_file: repoFilesOf(known), revision: known.revision } : undefined);
      if (!coords) {
        throw new FerryError('model.invalid_source', `no source for "${modelId}": it is not in the registry or the catalogue`, { hint: 'pass { "hf_repo": "org/name", "hf_file": "file.gguf" }' });
      }
      hf_repo = coords.hf_repo;
      revision ??= coords.revision;
      hf_file ??= coords.hf_file;
    }
    const files = hf_file === undefined ? [] : Array.isArray(hf_file) ? hf_file : [hf_file];
    if (files.length > 64) throw new FerryError('model.invalid_source', 'at most 64 file names or globs');
    if (body.sha256 !== undefined && !/^[0-9a-f]{64}$/.test(body.sha256)) throw new FerryError('model.invalid_source', 'sha256 must be 64 lowercase hex characters');
    return {
      model_id: modelId,
      source: 'hf',
      hf_repo: assertRepoId(hf_repo),
      hf_files: files.map(assertFilePattern),
      ...(revision !== undefined ? { revision: assertRevision(revision) } : {}),
      ...(body.sha256 ? { expected_sha256: body.sha256 } : {}),
      ...(body.replace === true ? { replace: true } : {}),
      requested_at: Date.now(),
    };
  }

  /**
   * Present means: a row from the same source (repo, file set, pinned revision), its file on
   * disk, (when asked for) the same sha256, and no verify that found it corrupt or missing
   * (`ferry model verify`'s hint is to pull such a model again). A row from other coordinates
   * is a conflict, never "present", unless the request says `replace: true`.
   */
  private async presentEntry(request: PullJobData, body: PullRequestBody): Promise<RegistryEntry | undefined> {
    const entry = await this.deps.registry.get(request.model_id);
    if (!entry) return undefined;
    if (!sameSource(entry, request)) {
      if (request.replace) return undefined;
      throw new FerryError('model.source_conflict', `"${entry.id}" is in the registry from ${entry.hf_repo ? `${entry.hf_repo} (${rowRepoFiles(entry).join(', ') || 'no file recorded'})` : 'another source'}, not from ${request.hf_repo} ${request.hf_files?.join(', ') ?? ''}`.trim(), {
        hint: 'pull it under another id, or send { "replace": true } to replace it once the new files are installed',
        details: { registry: { hf_repo: entry.hf_repo ?? null, hf_file: rowRepoFiles(entry), revision: entry.revision ?? null }, requested: coordinatesOf(request) },
      });
    }
    if (!entry.sha256 || (body.sha256 && entry.sha256 !== body.sha256)) return undefined;
    if (entry.metadata && typeof entry.metadata === 'object' && 'corrupt' in entry.metadata) return undefined;
    const exists = await stat(entry.path).then(() => true, () => false);
    return exists ? entry : undefined;
  }

  /** A pull joined by deduplication must be the same request; another one is told what is running. */
  private async assertSameRequest(jobId: string, request: PullJobData): Promise<void> {
    const running = (await this.deps.queue.getJob(jobId))?.data;
    if (!running || sameRequest(running, request)) return;
    throw new FerryError('pull.conflict', `"${request.model_id}" is already being pulled with other coordinates (job ${jobId})`, {
      hint: 'wait for it to finish or cancel it, or pull under another id',
      details: { job_id: jobId, running: coordinatesOf(running), requested: coordinatesOf(request) },
    });
  }

  /**
   * Fail early where the API can know: a missing repo or file (404) and a disk too small for
   * the files (507). A gated repo or an unreachable hub is left to the workers, which may hold a token.
   */
  private async preflight(request: PullJobData, knownBytes?: number): Promise<void> {
    let bytes = knownBytes;
    if (bytes === undefined) {
      try {
        const files = await this.deps.hub.listFiles(request.hf_repo!, request.revision ?? 'main');
        const patterns = request.hf_files ?? [];
        const chosen = patterns.length > 0 ? selectFiles(files, patterns, request.hf_repo!) : pickQuant(files, undefined, request.hf_repo!);
        bytes = chosen.reduce((n, f) => n + f.size, 0);
      } catch (err) {
        if (isFerryError(err) && (err.code === 'source.not_found' || err.code === 'model.invalid_source' || err.code === 'source.bad_listing')) throw err;
        return;
      }
    }
    await assertFreeSpace(this.deps.pullRoot, bytes, this.deps.diskMarginBytes);
  }
}

function sameRequest(a: PullJobData, b: PullJobData): boolean {
  const files = (d: PullJobData) => JSON.stringify([...(d.hf_files ?? [])].sort());
  return a.source === b.source && a.hf_repo === b.hf_repo && files(a) === files(b) && a.revision === b.revision && a.expected_sha256 === b.expected_sha256;
}

/** A row's repo files as request patterns (all of them: a re-pull asks for the same set). */
function repoFilesOf(entry: RegistryEntry): string[] | undefined {
  const files = rowRepoFiles(entry);
  return files.length ? files : undefined;
}

function statusUrl(modelId: string): string {
  return `/api/models/${encodeURIComponent(modelId)}/pull/status`;
}
