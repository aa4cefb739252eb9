/** The JSON the dashboard reads, as the API's schemas define it (src/api/schemas*.ts, routes). */

export interface RegistryFile {
  path: string;
  sha256?: string;
  size_bytes?: number;
}

export interface ModelRow {
  id: string;
  path: string;
  name?: string;
  size_bytes?: number;
  sha256?: string;
  hf_repo?: string;
  hf_filename?: string;
  revision?: string;
  backends?: string[];
  tags?: string[];
  capabilities?: string[];
  metadata?: Record<string, unknown>;
  files?: RegistryFile[];
  created_at?: string;
  verified_at?: string;
  pullable?: boolean;
  [key: string]: unknown;
}

export type PullState = 'queued' | 'running' | 'verifying' | 'completed' | 'failed' | 'cancelled';

export interface PullFile {
  hf_filename: string;
  kind: string;
  bytes_total: number;
  bytes_done: number;
  sha256?: string;
  verified_by?: string;
}

export interface PullStatus {
  id: string;
  model_id: string;
  state: PullState;
  source: string;
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
  files: PullFile[];
  attempts: number;
}

export interface PullStarted {
  id: string | null;
  model_id: string;
  state: string;
  source: string;
  status_url: string;
  resumed?: boolean;
  derived_from?: string;
}

export interface SlotView {
  name: string;
  port: number;
  device: string;
  backend: string | null;
  model: string | null;
  state: string;
  model_id: string | null;
  updated_at: number;
  message: string | null;
  servable: boolean;
}

export interface CatalogueItem {
  id: string;
  display_name: string;
  description: string;
  size_gb: number;
  capability: string;
  backend: string;
  in_registry: boolean;
  hf_repo?: string;
  hf_file?: string;
}

export interface FileRegistry {
  name: string;
  url: string;
  kind: string;
  root: string;
}

export interface BentoModel {
  registry: string;
  tag: string;
  name: string;
  version: string;
  path: string;
  creation_time?: string;
  info: Record<string, unknown>;
  error?: string;
}

export interface WorkerJob {
  queue: string;
  id: string;
  model_id: string | null;
  slot: string | null;
  started_at: number | null;
}

export interface WorkerView {
  name: string;
  connected: boolean;
  host: string | null;
  pid: number | null;
  queues: string[];
  age_s: number;
  idle_s: number;
  jobs: WorkerJob[];
}

export const FINISHED_PULL_STATES: readonly PullState[] = ['completed', 'failed', 'cancelled'];
