import picomatch from 'picomatch';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { PullJobData } from '../queue/pull-status.js';

/** `<name>-00001-of-00003.gguf`: shards of one set come together (see hf-ref's withShards). */
const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.(gguf|safetensors)$/i;

/** The repo files a row was pulled from: per-file `hf_filename` when recorded, else the row's one `hf_filename`. */
export function rowRepoFiles(entry: RegistryEntry): string[] {
  const perFile = (entry.files ?? []).map((f) => f.hf_filename);
  if (perFile.length > 0 && perFile.every((f): f is string => typeof f === 'string')) return perFile;
  return entry.hf_filename ? [entry.hf_filename] : [];
}

/**
 * Whether a row came from what a pull asks for: the same repo, the same file set (every asked
 * name or glob matches one of the row's files, and every row file is matched or is a shard of
 * a matched set), and the same revision when the request pins one. A request naming no files
 * (the repo's default quant) matches any row from that repo.
 */
export function sameSource(entry: RegistryEntry, request: Pick<PullJobData, 'hf_repo' | 'hf_files' | 'revision'>): boolean {
  if (!entry.hf_repo || entry.hf_repo !== request.hf_repo) return false;
  if (!sameRevision(entry.revision, request.revision)) return false;
  const patterns = request.hf_files ?? [];
  if (patterns.length === 0) return true;
  const files = rowRepoFiles(entry);
  if (files.length === 0) return false;
  const matchers = patterns.map((p) => {
    const isMatch = picomatch(p, { dot: false });
    return (f: string) => f === p || isMatch(f);
  });
  if (!matchers.every((m) => files.some(m))) return false;
  const matched = files.filter((f) => matchers.some((m) => m(f)));
  const stems = new Set(matched.map((f) => shardStem(f)).filter(Boolean));
  return files.every((f) => matched.includes(f) || stems.has(shardStem(f)));
}

/**
 * Rows record the commit a pull resolved to. A request pinning a commit must name that one; an
 * unpinned request (no revision, or `main`) matches any; another branch or tag cannot be checked
 * without asking the Hub, so it does not count as the same source (the pull runs again).
 */
function sameRevision(rowCommit: string | undefined, asked: string | undefined): boolean {
  if (asked === undefined || asked === 'main') return true;
  if (/^[0-9a-f]{40}$/.test(asked)) return asked === rowCommit;
  return false;
}

function shardStem(path: string): string | undefined {
  const m = SHARD.exec(path);
  return m ? `${m[1]}\0${m[3]}\0${m[4]}` : undefined;
}

/** The coordinates a status or a 409 names: what was asked for, never a token. */
export function coordinatesOf(data: Pick<PullJobData, 'hf_repo' | 'hf_files' | 'revision' | 'expected_sha256'>): Record<string, unknown> {
  return {
    hf_repo: data.hf_repo ?? null,
    hf_file: data.hf_files?.length ? data.hf_files : null,
    revision: data.revision ?? null,
    ...(data.expected_sha256 ? { sha256: data.expected_sha256 } : {}),
  };
}
