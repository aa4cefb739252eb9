/** One shard of a multi-file model, as Ferry records it in `files`. */
export interface RegistryFile {
  path: string;
  sha256?: string;
  size_bytes?: number;
  [key: string]: unknown;
}

/**
 * A row of hal0's registry.toml. The id is the table key (`[models."<id>"]`), not a field in
 * the file; Ferry carries it alongside. Keys neither side knows are kept as they are.
 */
export interface RegistryEntry {
  id: string;
  path: string;
  name?: string;
  size_bytes?: number;
  quant?: string;
  license?: string;
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
  [key: string]: unknown;
}
