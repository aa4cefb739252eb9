import { stat } from 'node:fs/promises';
import { FerryError } from '../errors/ferry-error.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { RegistryStore } from '../registry/registry-store.js';
import type { CorruptInfo, VerifyFileResult, VerifyProgress, VerifyResult } from '../queue/verify-status.js';
import { sha256File } from '../util/hash-stream.js';

/** Progress goes to Redis at most this often (each report is a Lua call). */
const REPORT_INTERVAL_MS = 500;

export interface VerifyModelJob {
  modelId: string;
  report?: (p: VerifyProgress) => Promise<void>;
  signal?: AbortSignal;
}

/**
 * Re-hashes every file of a registry entry (`files[]`, else `path`) with streaming SHA-256
 * and records the outcome in the registry: `verified_at` when all match, or
 * `metadata.corrupt = { expected, found, file, at }` (and no `verified_at`) when one does not.
 * A later successful verify clears `metadata.corrupt`. An entry without any sha256 (an FLM
 * directory) is `not_verifiable` and left as it is.
 */
export async function verifyModel(registry: RegistryStore, job: VerifyModelJob): Promise<VerifyResult> {
  const entry = await registry.get(job.modelId);
  if (!entry) throw new FerryError('model.not_found', `model "${job.modelId}" is not in the registry`);
  const files = filesOf(entry);
  const checkable = files.filter((f) => f.expected);
  if (checkable.length === 0) {
    return { model_id: entry.id, state: 'not_verifiable', files, bytes: 0, reason: 'the entry has no sha256 to check against (FLM models keep no digests in the registry)' };
  }
  const total = await totalSize(checkable);
  let done = 0;
  let lastReport = 0;
  let corrupt: CorruptInfo | undefined;
  const at = new Date().toISOString();
  for (const file of checkable) {
    const base = done;
    const found = await sha256File(file.path, (bytes) => {
      done = base + bytes;
      const now = Date.now();
      if (job.report && now - lastReport >= REPORT_INTERVAL_MS) {
        lastReport = now;
        void job.report({ bytes_total: total, bytes_done: done, file: file.path }).catch(() => undefined);
      }
    }, undefined, job.signal).then(
      (r) => r.sha256,
      (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT') return 'missing';
        throw err;
      },
    );
    file.found = found;
    file.ok = found === file.expected;
    if (!file.ok) {
      corrupt = { expected: file.expected!, found, file: file.path, at };
      break; // one bad file makes the model corrupt; hashing the rest only costs time
    }
  }
  await record(registry, entry, corrupt, at);
  return corrupt
    ? { model_id: entry.id, state: corrupt.found === 'missing' ? 'missing' : 'corrupt', files, bytes: done, corrupt }
    : { model_id: entry.id, state: 'ok', files, bytes: done, verified_at: at };
}

function filesOf(entry: RegistryEntry): VerifyFileResult[] {
  if (entry.files?.length) return entry.files.map((f) => ({ path: f.path, expected: f.sha256 ?? null, ok: null }));
  return [{ path: entry.path, expected: entry.sha256 ?? null, ok: null }];
}

async function totalSize(files: VerifyFileResult[]): Promise<number> {
  let n = 0;
  for (const f of files) n += await stat(f.path).then((s) => s.size, () => 0);
  return n;
}

/** Under the registry lock; skipped when the row changed meanwhile (re-pulled or removed): our digests are about old bytes. */
async function record(registry: RegistryStore, before: RegistryEntry, corrupt: CorruptInfo | undefined, at: string): Promise<void> {
  await registry.mutate((draft) => {
    const now = draft.get(before.id);
    if (!now || now.path !== before.path || now.sha256 !== before.sha256) return;
    const { corrupt: _old, ...metadata } = now.metadata ?? {};
    const next: RegistryEntry = { ...now };
    if (corrupt) {
      next.metadata = { ...metadata, corrupt: { ...corrupt } };
      delete next.verified_at;
    } else {
      next.verified_at = at;
      if (Object.keys(metadata).length > 0) next.metadata = metadata;
      else delete next.metadata;
    }
    draft.set(next);
  });
}
