import { mkdir, readdir, readFile, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../stores/atomic-write.js';
import type { CommitRecord, MirrorCacheEntry } from './mirror-types.js';
import type { PathInfo } from './upstream-hub.js';

interface RefBinding {
  commit: string;
  bound_at: number;
}

interface BlobMeta {
  etag: string;
  size: number;
  repo?: string;
  path?: string;
  commit?: string;
}

const ETAG = /^([0-9a-f]{40}|[0-9a-f]{64})$/;

/**
 * What the mirror keeps on disk, under `<model_root>/.ferry-mirror/`: commit listings (kept
 * forever: a commit never changes), branch/tag bindings (for offline mode and restarts), the
 * expand=true paths-info answers, and the bytes it fetched itself (`blobs/<etag>`, the Hub's
 * etag being the sha256 of LFS files and the git sha1 of small ones). Repo ids and etags were
 * validated before they get here; every name below is built from them.
 */
export class MirrorStore {
  readonly root: string;

  constructor(modelRoot: string) {
    this.root = join(modelRoot, '.ferry-mirror');
  }

  blobPath(etag: string): string {
    if (!ETAG.test(etag)) throw new Error(`not an etag: ${etag.slice(0, 80)}`);
    return join(this.root, 'blobs', etag);
  }

  async readCommit(repo: string, commit: string): Promise<CommitRecord | undefined> {
    return readJson<CommitRecord>(join(this.root, 'commits', repo, `${commit}.json`));
  }

  async writeCommit(record: CommitRecord, repo: string): Promise<void> {
    await this.writeJson(join(this.root, 'commits', repo, `${record.sha}.json`), record);
  }

  async readRef(repo: string, ref: string): Promise<RefBinding | undefined> {
    return readJson<RefBinding>(join(this.root, 'refs', repo, `${refFileName(ref)}.json`));
  }

  async writeRef(repo: string, ref: string, binding: RefBinding): Promise<void> {
    await this.writeJson(join(this.root, 'refs', repo, `${refFileName(ref)}.json`), binding);
  }

  async readPathsInfo(repo: string, commit: string): Promise<Record<string, PathInfo['lastCommit']>> {
    return (await readJson<Record<string, PathInfo['lastCommit']>>(join(this.root, 'paths-info', repo, `${commit}.json`))) ?? {};
  }

  async writePathsInfo(repo: string, commit: string, value: Record<string, PathInfo['lastCommit']>): Promise<void> {
    await this.writeJson(join(this.root, 'paths-info', repo, `${commit}.json`), value);
  }

  /** A fetched blob's size, or undefined when absent. */
  async blobSize(etag: string): Promise<number | undefined> {
    const info = await stat(this.blobPath(etag)).catch(() => undefined);
    return info?.isFile() ? info.size : undefined;
  }

  async writeBlobMeta(meta: BlobMeta): Promise<void> {
    await this.writeJson(`${this.blobPath(meta.etag)}.json`, meta);
  }

  /** Last use is the meta file's mtime, touched when a blob is served (at most once a minute per blob, by the caller). */
  async touch(etag: string): Promise<void> {
    const now = new Date();
    await utimes(`${this.blobPath(etag)}.json`, now, now).catch(() => undefined);
  }

  async list(): Promise<MirrorCacheEntry[]> {
    const dir = join(this.root, 'blobs');
    const names = await readdir(dir).catch(() => [] as string[]);
    const out: MirrorCacheEntry[] = [];
    for (const name of names) {
      if (!ETAG.test(name)) continue;
      const info = await stat(join(dir, name)).catch(() => undefined);
      if (!info?.isFile()) continue;
      const meta = await readJson<BlobMeta>(join(dir, `${name}.json`));
      const used = await stat(join(dir, `${name}.json`)).then((s) => s.mtime, () => info.mtime);
      out.push({ etag: name, size_bytes: info.size, repo: meta?.repo, path: meta?.path, commit: meta?.commit, last_used_at: used.toISOString() });
    }
    return out.sort((a, b) => b.last_used_at.localeCompare(a.last_used_at));
  }

  private async writeJson(path: string, value: unknown): Promise<void> {
    await mkdir(join(path, '..'), { recursive: true });
    await writeFileAtomic(path, JSON.stringify(value));
  }
}

/** Ref names may hold `/` (refs/pr/1): hex keeps them one safe file name. */
function refFileName(ref: string): string {
  return Buffer.from(ref, 'utf8').toString('hex');
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
