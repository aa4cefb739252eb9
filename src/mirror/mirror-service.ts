import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { isFerryError } from '../errors/ferry-error.js';
import { mirrorError } from './mirror-errors.js';
import type { HeldFiles } from './held-files.js';
import { isCommit } from './hub-names.js';
import type { MirrorStore } from './mirror-store.js';
import type { CommitRecord, MirrorCacheEntry, ResolvedHubFile, TreeEntry } from './mirror-types.js';
import type { PathInfo, UpstreamHub } from './upstream-hub.js';

export interface MirrorServiceDeps {
  upstream: UpstreamHub;
  store: MirrorStore;
  held: HeldFiles;
  /** Config `mirror_offline`: serve only what is on disk; never call upstream. */
  offline: boolean;
  /** Config `mirror_ref_ttl_s`: how long a branch or tag stays bound to one commit. */
  refTtlMs: number;
  /** How long an access check of a gated or private repo is remembered (as a hash of the token). */
  accessTtlMs?: number;
  /** Config `mirror_public`: /hub readable without an API token. */
  publicRead?: boolean;
  /** Config `mirror_max_streams_per_client`. @defaultValue 8 */
  maxStreamsPerClient?: number;
  /** Entries per page of the tree API. @defaultValue 1000 */
  treePageSize?: number;
  /** Fetches a file Ferry lacks through the pull queue and streams it as it lands; absent: such files are 504. */
  pullThrough?: PullThrough;
}

export interface PullThrough {
  /** Bytes `[start, end)` of a file being pulled; the stream is destroyed (never ended) if the pull's digest does not match. */
  open(file: ResolvedHubFile, start: number, end: number): Promise<Readable>;
}

export interface TreePage {
  entries: TreeEntry[];
  commit: string;
  /** Offset of the next page, when there is one. */
  nextCursor?: string;
}

/**
 * The read side of the Hub protocol, answered from what Ferry holds. Listings come from upstream
 * once and are kept: a commit's listing forever, a branch or tag's binding to one commit for
 * `refTtlMs` (so a snapshot never mixes two commits). A gated or private repo is checked upstream
 * with the client's own token on every request (remembered briefly, as a hash).
 */
export class MirrorService {
  private readonly commits = new Map<string, CommitRecord>();
  private readonly refs = new Map<string, { commit: string; boundAt: number }>();
  private readonly inflight = new Map<string, Promise<CommitRecord>>();
  private readonly access = new Map<string, number>();
  private readonly lastTouch = new Map<string, number>();

  constructor(readonly deps: MirrorServiceDeps) {}

  get offline(): boolean {
    return this.deps.offline;
  }

  /** The commit a revision stands for, with its listing; `auth` is the client's own Authorization header. */
  async commitFor(repo: string, rev: string, auth?: string): Promise<CommitRecord> {
    const record = await this.lookupCommit(repo, rev, auth);
    await this.checkAccess(record, undefined, auth);
    return record;
  }

  async tree(repo: string, rev: string, opts: { path: string; recursive: boolean; cursor?: string }, auth?: string): Promise<TreePage> {
    const record = await this.commitFor(repo, rev, auth);
    const base = opts.path;
    if (base !== '' && !record.entries.some((e) => e.type === 'directory' && e.path === base)) {
      throw mirrorError('mirror.entry_not_found', `${base} does not exist on "${rev}"`, { repo_commit: record.sha });
    }
    const prefix = base === '' ? '' : `${base}/`;
    const inScope = record.entries.filter((e) => e.path.startsWith(prefix) && (opts.recursive || !e.path.slice(prefix.length).includes('/')));
    const offset = parseCursor(opts.cursor);
    const size = this.deps.treePageSize ?? 1000;
    const entries = inScope.slice(offset, offset + size);
    return { entries, commit: record.sha, ...(offset + size < inScope.length ? { nextCursor: Buffer.from(String(offset + size)).toString('base64url') } : {}) };
  }

  /** paths-info: the entries for those paths; with `expand`, upstream's lastCommit (kept per commit). */
  async pathsInfo(repo: string, rev: string, paths: string[], expand: boolean, auth?: string): Promise<PathInfo[]> {
    const record = await this.commitFor(repo, rev, auth);
    const wanted = new Set(paths);
    const entries = record.entries.filter((e) => wanted.has(e.path));
    if (!expand || entries.length === 0) return entries;
    const known = await this.deps.store.readPathsInfo(repo, record.sha);
    const missing = entries.filter((e) => !(e.path in known)).map((e) => e.path);
    if (missing.length > 0 && !this.offline) {
      try {
        for (const info of await this.deps.upstream.pathsInfo(repo, record.sha, missing, auth)) known[info.path] = info.lastCommit;
        await this.deps.store.writePathsInfo(repo, record.sha, known);
      } catch (err) {
        if (isFerryError(err) && err.code === 'mirror.gated') throw err;
        // An upstream without paths-info: answer without lastCommit rather than fail.
      }
    }
    return entries.map((e) => (known[e.path] ? { ...e, lastCommit: known[e.path] } : e));
  }

  /** A file's Hub metadata, and where Ferry holds its verified bytes if it does. */
  async resolve(repo: string, rev: string, path: string, auth?: string): Promise<ResolvedHubFile> {
    const record = await this.lookupCommit(repo, rev, auth);
    const entry = record.entries.find((e) => e.type === 'file' && e.path === path);
    if (!entry) throw mirrorError('mirror.entry_not_found', `${path} does not exist on "${rev}"`, { repo_commit: record.sha });
    await this.checkAccess(record, path, auth);
    const etag = entry.lfs?.oid ?? entry.oid;
    const size = entry.lfs?.size ?? entry.size;
    const localPath = (await this.deps.held.find({ sha256: entry.lfs?.oid, repo: record.id, commit: record.sha, path, size })) ?? (await this.fetchedBlob(etag, size));
    return { record, entry, etag, size, ...(localPath ? { localPath } : {}) };
  }

  /**
   * The bytes `[start, end)`: from disk when Ferry holds them (a plain read stream, no hashing:
   * the digest was checked when the file was installed), else pulled through.
   */
  async openBody(file: ResolvedHubFile, start: number, end: number): Promise<Readable> {
    if (file.localPath) return createReadStream(file.localPath, { start, end: Math.max(start, end - 1), highWaterMark: 1 << 20 });
    if (this.offline || !this.deps.pullThrough) {
      throw mirrorError('mirror.not_cached', `${file.record.id}/${file.entry.path} is not held here${this.offline ? ', and the mirror is offline' : ''}`);
    }
    return this.deps.pullThrough.open(file, start, end);
  }

  /** The files the mirror fetched itself (`ferry mirror list`, `GET /api/mirror`), most recently used first. */
  async list(): Promise<{ entries: MirrorCacheEntry[]; total_bytes: number }> {
    const entries = await this.deps.store.list();
    return { entries, total_bytes: entries.reduce((n, e) => n + e.size_bytes, 0) };
  }

  /** Marks a blob the mirror fetched as used (for `ferry mirror list`), at most once a minute. */
  noteServed(etag: string): void {
    const now = Date.now();
    if ((this.lastTouch.get(etag) ?? 0) > now - 60_000) return;
    this.lastTouch.set(etag, now);
    void this.deps.store.touch(etag);
  }

  private async fetchedBlob(etag: string, size: number): Promise<string | undefined> {
    return (await this.deps.store.blobSize(etag)) === size ? this.deps.store.blobPath(etag) : undefined;
  }

  private async lookupCommit(repo: string, rev: string, auth?: string): Promise<CommitRecord> {
    if (isCommit(rev)) {
      const known = await this.cachedCommit(repo, rev);
      if (known) return known;
      if (this.offline) throw notCached(repo, rev);
      return this.coalesce(`${repo}@${rev}`, () => this.fetchCommit(repo, rev, auth));
    }
    const key = `${repo}\0${rev}`;
    let binding = this.refs.get(key);
    if (!binding) {
      const onDisk = await this.deps.store.readRef(repo, rev);
      if (onDisk) this.refs.set(key, (binding = { commit: onDisk.commit, boundAt: onDisk.bound_at }));
    }
    const fresh = binding && (this.offline || Date.now() - binding.boundAt < this.deps.refTtlMs);
    if (binding && fresh) {
      const known = await this.cachedCommit(repo, binding.commit);
      if (known) return known;
    }
    if (this.offline) throw notCached(repo, rev);
    return this.coalesce(`${repo}@${rev}`, async () => {
      const record = await this.fetchCommit(repo, rev, auth);
      const bound = { commit: record.sha, boundAt: Date.now() };
      this.refs.set(key, bound);
      await this.deps.store.writeRef(repo, rev, { commit: bound.commit, bound_at: bound.boundAt });
      return record;
    });
  }

  private async cachedCommit(repo: string, commit: string): Promise<CommitRecord | undefined> {
    const key = `${repo}@${commit}`;
    let record = this.commits.get(key);
    if (!record) {
      record = await this.deps.store.readCommit(repo, commit);
      if (record) this.commits.set(key, record);
    }
    return record;
  }

  /** Revision info, then the tree at that commit; the client's own token proves access to a restricted repo. */
  private async fetchCommit(repo: string, rev: string, auth?: string): Promise<CommitRecord> {
    const info = await this.deps.upstream.revision(repo, rev, auth);
    const known = await this.cachedCommit(repo, info.sha);
    if (known) {
      if (known.restricted && auth) this.rememberAccess(known, auth);
      return known;
    }
    const entries = await this.deps.upstream.tree(repo, info.sha, auth);
    const record: CommitRecord = { id: info.id, sha: info.sha, gated: info.gated, private: info.private, restricted: info.gated !== false || info.private, entries, fetched_at: Date.now() };
    await this.deps.store.writeCommit(record, repo);
    this.commits.set(`${repo}@${info.sha}`, record);
    if (record.restricted && auth) this.rememberAccess(record, auth);
    return record;
  }

  /**
   * A gated or private repo's cached listing or file goes only to a client whose token upstream
   * accepts for that repo. Offline, nothing can be checked: refused.
   */
  private async checkAccess(record: CommitRecord, path: string | undefined, auth?: string): Promise<void> {
    if (!record.restricted) return;
    if (this.offline) throw mirrorError('mirror.gated', `Access to model ${record.id} is restricted, and this mirror is offline: it cannot check a token`);
    if (!auth) throw mirrorError('mirror.gated', `Access to model ${record.id} is restricted. You must be authenticated to access it.`);
    const key = accessKey(record.id, auth);
    if ((this.access.get(key) ?? 0) > Date.now()) return;
    const probe = path ?? record.entries.find((e) => e.type === 'file')?.path;
    if (probe) await this.deps.upstream.checkAccess(record.id, record.sha, probe, auth);
    else await this.deps.upstream.revision(record.id, record.sha, auth);
    this.rememberAccess(record, auth);
  }

  private rememberAccess(record: CommitRecord, auth: string): void {
    const now = Date.now();
    for (const [key, until] of this.access) if (until <= now) this.access.delete(key);
    this.access.set(accessKey(record.id, auth), now + (this.deps.accessTtlMs ?? 60_000));
  }

  private coalesce(key: string, run: () => Promise<CommitRecord>): Promise<CommitRecord> {
    let pending = this.inflight.get(key);
    if (!pending) {
      pending = run().finally(() => this.inflight.delete(key));
      this.inflight.set(key, pending);
    }
    return pending;
  }
}

/** Only a hash of the token is kept, in memory, for a minute: never the token. */
function accessKey(repo: string, auth: string): string {
  return createHash('sha256').update(`${repo}\0${auth}`).digest('hex');
}

function parseCursor(cursor: string | undefined): number {
  if (!cursor) return 0;
  const n = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Number.isSafeInteger(n) || n < 0) throw mirrorError('mirror.invalid_request', 'invalid cursor');
  return n;
}

function notCached(repo: string, rev: string) {
  return mirrorError('mirror.not_cached', `${repo}@${rev} is not in this mirror's cache, and the mirror is offline`);
}
