import { stat } from 'node:fs/promises';
import { dirname, posix, relative, sep } from 'node:path';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { RegistryStore } from '../registry/registry-store.js';

/**
 * Which verified files Ferry holds, from the registry rows: by sha256 (any row, whichever repo it
 * came from) and by (repo, commit, path) for small git files, whose Hub etag is a git sha1 the
 * rows do not record. Rebuilt when the registry snapshot changes; rows marked corrupt by verify
 * are left out.
 */
export class HeldFiles {
  private built?: { snapshot: unknown; bySha256: Map<string, string[]>; byRepoPath: Map<string, string> };

  constructor(private readonly registry: RegistryStore) {}

  /** A path whose bytes are `sha256` (or, lacking one, the repo's file at that commit) and whose size is `size`. */
  async find(opts: { sha256?: string; repo: string; commit: string; path: string; size: number }): Promise<string | undefined> {
    const index = await this.index();
    const candidates = [...(opts.sha256 ? index.bySha256.get(opts.sha256) ?? [] : [])];
    const byPath = index.byRepoPath.get(repoPathKey(opts.repo, opts.commit, opts.path));
    if (byPath && !opts.sha256) candidates.push(byPath);
    for (const path of candidates) {
      // A stat, not a hash: the row's digest was verified when it was installed.
      const info = await stat(path).catch(() => undefined);
      if (info?.isFile() && info.size === opts.size) return path;
    }
    return undefined;
  }

  private async index() {
    const snapshot = await this.registry.read();
    if (this.built?.snapshot === snapshot) return this.built;
    const bySha256 = new Map<string, string[]>();
    const byRepoPath = new Map<string, string>();
    for (const row of snapshot.models.values()) {
      if (row.metadata && (row.metadata as Record<string, unknown>).corrupt) continue;
      for (const file of rowFiles(row)) {
        if (file.sha256) bySha256.set(file.sha256, [...(bySha256.get(file.sha256) ?? []), file.path]);
        if (row.hf_repo && row.revision && file.hubPath) byRepoPath.set(repoPathKey(row.hf_repo, row.revision, file.hubPath), file.path);
      }
    }
    this.built = { snapshot, bySha256, byRepoPath };
    return this.built;
  }
}

/** A row's files with their path in the Hub repo, where it can be told. */
function rowFiles(row: RegistryEntry): Array<{ path: string; sha256?: string; hubPath?: string }> {
  if (!row.files?.length) return [{ path: row.path, sha256: row.sha256, hubPath: row.hf_filename }];
  const first = row.hf_filename ?? '';
  const isDir = !row.files.some((f) => f.path === row.path);
  return row.files.map((f) => ({
    path: f.path,
    sha256: f.sha256,
    // A directory row holds the repo's layout under it; a split GGUF sits flat beside its first shard.
    hubPath: isDir ? relative(row.path, f.path).split(sep).join('/') : posix.join(posix.dirname(first), f.path.slice(dirname(f.path).length + 1)),
  }));
}

function repoPathKey(repo: string, commit: string, path: string): string {
  return `${repo}\0${commit}\0${path}`;
}
