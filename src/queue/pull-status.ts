/** One file of a pull, in hal0's job shape. */
export interface PullFileStatus {
  hf_filename: string;
  kind: 'model' | 'mmproj';
  dest?: string;
  bytes_total: number;
  bytes_done: number;
  sha256?: string;
  expected_sha256?: string;
  /** Which digest the source let us check: sha256 (LFS), git-sha1 (small git files) or none. */
  verified_by?: 'sha256' | 'git-sha1' | 'none';
}

export type PullState = 'queued' | 'running' | 'verifying' | 'completed' | 'failed' | 'cancelled';

/** What GET .../pull/status answers: hal0's job JSON plus throughput, elapsed and ETA. */
export interface PullStatus {
  id: string;
  model_id: string;
  state: PullState;
  source: 'hf' | 'flm' | 'mirror';
  hf_repo?: string;
  hf_file?: string;
  revision?: string;
  bytes_total: number;
  bytes_downloaded: number;
  throughput_bps: number;
  elapsed_s: number;
  eta_s: number | null;
  started_at: number | null;
  finished_at: number | null;
  error: string | null;
  error_code: string | null;
  sha256: string | null;
  path: string | null;
  files: PullFileStatus[];
  attempts: number;
  /** Connections the pull has open now (0 unless running). */
  connections: number;
}

/** What a worker writes with job.updateProgress (throttled); the reader adds the rest. */
export interface PullProgress {
  state: 'running' | 'verifying' | 'completed' | 'failed' | 'cancelled';
  bytes_total: number;
  bytes_downloaded: number;
  throughput_bps: number;
  started_at: number;
  finished_at?: number;
  revision?: string;
  files: PullFileStatus[];
  error?: string;
  error_code?: string;
  sha256?: string;
  path?: string;
  /** Set by the worker that holds the job, for the logs and the dashboard. */
  worker?: string;
  /** Connections the pull has open now (parallel parts of its files). */
  connections?: number;
}

/** Job data: coordinates only. Never a token: workers read HF_TOKEN from their own environment. */
export interface PullJobData {
  model_id: string;
  /** `mirror`: one file fetched for the Hub mirror into its blob store (src/mirror/mirror-fetch.ts), no registry row. */
  source: 'hf' | 'flm' | 'mirror';
  hf_repo?: string;
  /** File names or globs; shards of a split model are added by the worker. */
  hf_files?: string[];
  revision?: string;
  expected_sha256?: string;
  /** The request said `replace: true`: the row may come from other coordinates and is replaced. */
  replace?: boolean;
  requested_at: number;
  /** A mirror fetch's file: its Hub etag (blob name), size and digests. */
  mirror?: { etag: string; size: number; sha256?: string; git_sha1?: string };
  /** Set by a slot swap: when the pull finishes, the worker continues with verify, then warm. */
  chain?: { slot: string };
}

export interface PullResult {
  model_id: string;
  path: string;
  sha256?: string;
  bytes: number;
}
