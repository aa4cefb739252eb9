/** Where a corrupt model's evidence is kept: `[models."<id>".metadata.corrupt]` in registry.toml. */
export interface CorruptInfo {
  /** The digest the registry holds for the file. */
  expected: string;
  /** The digest of the bytes on disk now, or "missing" when the file is gone. */
  found: string;
  file: string;
  /** ISO time of the verify that found it. */
  at: string;
}

/** One file's outcome. `found` is absent while it was not hashed yet or has no digest to check. */
export interface VerifyFileResult {
  path: string;
  expected: string | null;
  found?: string;
  ok: boolean | null;
}

/**
 * ok: every digest matched; corrupt: one did not; missing: a file is gone (told apart from
 * corrupt because the fix differs: restore or re-pull, no bad bytes to investigate);
 * not_verifiable: the entry has no sha256 (FLM directories).
 */
export type VerifyOutcome = 'ok' | 'corrupt' | 'missing' | 'not_verifiable';
export type VerifyState = 'queued' | 'running' | VerifyOutcome | 'failed';

export interface VerifyJobData {
  model_id: string;
  requested_at: number;
  /** A slot swap waiting for this verify: on success the worker enqueues the warm job. */
  chain?: { slot: string };
}

export interface VerifyResult {
  model_id: string;
  state: VerifyOutcome;
  files: VerifyFileResult[];
  bytes: number;
  verified_at?: string;
  corrupt?: CorruptInfo;
  /** Why a model is not verifiable. */
  reason?: string;
}

/** What the worker reports while hashing (throttled). */
export interface VerifyProgress {
  bytes_total: number;
  bytes_done: number;
  file: string;
}

/** GET /api/models/:id/verify/status. */
export interface VerifyStatus {
  id: string;
  model_id: string;
  state: VerifyState;
  bytes_total: number;
  bytes_done: number;
  files: VerifyFileResult[];
  verified_at: string | null;
  corrupt: CorruptInfo | null;
  reason: string | null;
  error: string | null;
  started_at: number | null;
  finished_at: number | null;
}
