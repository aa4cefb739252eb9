import { FerryError } from '../errors/ferry-error.js';
import { mirrorError } from './mirror-errors.js';
import type { TreeEntry } from './mirror-types.js';

export interface UpstreamRevision {
  id: string;
  sha: string;
  gated: string | false;
  private: boolean;
}

/** A paths-info entry as upstream gave it (sanitised), with `lastCommit` when asked for with expand. */
export type PathInfo = TreeEntry & { lastCommit?: { id: string; title: string; date: string } };

const MAX_REDIRECTS = 5;
const MAX_PAGES = 1000;

/**
 * The mirror's side of the Hub protocol: listings and access checks upstream, sent with the
 * client's own Authorization (never Ferry's HF_TOKEN: the Hub's answer to the client decides).
 * Bodies are fetched by the pull workers, not here.
 */
export class UpstreamHub {
  readonly endpoint: string;

  constructor(endpoint: string, private readonly timeoutMs = 15_000) {
    this.endpoint = endpoint.replace(/\/+$/, '');
  }

  async revision(repo: string, rev: string, auth?: string): Promise<UpstreamRevision> {
    const body = (await this.json('GET', `${this.endpoint}/api/models/${repo}/revision/${encodeURIComponent(rev)}`, repo, auth)) as Record<string, unknown>;
    if (typeof body?.sha !== 'string' || !/^[0-9a-f]{40}$/.test(body.sha) || typeof body.id !== 'string') {
      throw mirrorError('mirror.upstream_unavailable', `${repo}: upstream revision info has no id or commit`);
    }
    return { id: body.id, sha: body.sha, gated: typeof body.gated === 'string' ? body.gated : body.gated ? 'auto' : false, private: body.private === true };
  }

  /** Every entry at `commit`, following the tree API's pages, in upstream's order. */
  async tree(repo: string, commit: string, auth?: string): Promise<TreeEntry[]> {
    const entries: TreeEntry[] = [];
    let url: string | undefined = `${this.endpoint}/api/models/${repo}/tree/${commit}?recursive=true&expand=false`;
    for (let page = 0; url && page < MAX_PAGES; page++) {
      const { body, link } = await this.request('GET', url, repo, auth);
      if (!Array.isArray(body)) throw mirrorError('mirror.upstream_unavailable', `${repo}: upstream tree is not a list`);
      for (const item of body) {
        const entry = sanitizeEntry(item);
        if (entry) entries.push(entry);
      }
      url = nextLink(link, url);
    }
    return entries; // upstream's order, kept: sub-listings are filtered from it
  }

  /** paths-info with expand (lastCommit), which the JS client uses to name its snapshot folder. */
  async pathsInfo(repo: string, commit: string, paths: string[], auth?: string): Promise<PathInfo[]> {
    const { body } = await this.request('POST', `${this.endpoint}/api/models/${repo}/paths-info/${commit}`, repo, auth, JSON.stringify({ paths, expand: true }));
    if (!Array.isArray(body)) throw mirrorError('mirror.upstream_unavailable', `${repo}: upstream paths-info is not a list`);
    const out: PathInfo[] = [];
    for (const item of body) {
      const entry = sanitizeEntry(item);
      if (!entry) continue;
      const last = (item as Record<string, any>).lastCommit;
      out.push(last && typeof last.id === 'string' ? { ...entry, lastCommit: { id: String(last.id), title: String(last.title ?? ''), date: String(last.date ?? '') } } : entry);
    }
    return out;
  }

  /** Whether upstream lets this client read the file: a HEAD on resolve with its Authorization. */
  async checkAccess(repo: string, commit: string, path: string, auth?: string): Promise<void> {
    const url = `${this.endpoint}/${repo}/resolve/${commit}/${path.split('/').map(encodeURIComponent).join('/')}`;
    const res = await this.send('HEAD', url, auth);
    if (res.status >= 400) throw upstreamError(res, repo);
  }

  private async json(method: 'GET' | 'POST', url: string, repo: string, auth?: string): Promise<unknown> {
    return (await this.request(method, url, repo, auth)).body;
  }

  /** Follows same-origin redirects (a renamed repo) only; anything else that is not 2xx becomes a mirror error. */
  private async request(method: 'GET' | 'POST', url: string, repo: string, auth?: string, body?: string): Promise<{ body: unknown; link?: string }> {
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.send(method, url, auth, body);
      const location = res.headers.get('location');
      if (res.status >= 300 && res.status < 400 && location) {
        const next = new URL(location, url);
        if (next.origin !== new URL(url).origin) throw mirrorError('mirror.upstream_unavailable', `${repo}: upstream API redirected to another host`);
        url = next.toString();
        continue;
      }
      if (res.status >= 400) throw upstreamError(res, repo);
      try {
        return { body: await res.json(), link: res.headers.get('link') ?? undefined };
      } catch {
        throw mirrorError('mirror.upstream_unavailable', `${repo}: upstream did not answer JSON`);
      }
    }
    throw mirrorError('mirror.upstream_unavailable', `${repo}: too many redirects upstream`);
  }

  private async send(method: string, url: string, auth?: string, body?: string): Promise<Response> {
    try {
      return await fetch(url, {
        method,
        redirect: 'manual',
        headers: { 'accept-encoding': 'identity', 'user-agent': 'ferry-mirror/0.1', ...(auth ? { authorization: auth } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
        body,
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      // The URL names only the upstream and the repo; the cause's text never carries the token.
      throw mirrorError('mirror.upstream_unavailable', `upstream ${new URL(url).origin} unreachable: ${(err as Error).name}`);
    }
  }
}

/** Upstream's answer becomes the same Hub error for the client; 5xx and 429 are "unavailable", never "not found". */
function upstreamError(res: Response, repo: string): FerryError {
  const code = res.headers.get('x-error-code');
  const commit = res.headers.get('x-repo-commit') ?? undefined;
  const details = commit && /^[0-9a-f]{40}$/.test(commit) ? { repo_commit: commit } : {};
  if (res.status >= 500 || res.status === 429) return mirrorError('mirror.upstream_unavailable', `${repo}: upstream answered ${res.status}`);
  switch (code) {
    case 'GatedRepo':
      return mirrorError('mirror.gated', `Access to model ${repo} is restricted: upstream refused this token`);
    case 'RepoNotFound':
      return mirrorError('mirror.repo_not_found', `Repository ${repo} not found (or private and this token has no access)`);
    case 'RevisionNotFound':
      return mirrorError('mirror.revision_not_found', `${repo}: revision not found`);
    case 'EntryNotFound':
      return mirrorError('mirror.entry_not_found', `${repo}: entry not found`, details);
    default:
  }
  if (res.status === 401 || res.status === 403) return mirrorError('mirror.gated', `Access to model ${repo} is restricted: upstream answered ${res.status}`);
  if (res.status === 404) return mirrorError('mirror.repo_not_found', `${repo}: not found upstream`);
  return mirrorError('mirror.upstream_unavailable', `${repo}: upstream answered ${res.status}`);
}

/**
 * Only the fields Ferry vouches for: Xet hints (`xetHash`) and anything else upstream adds never
 * reach clients (a client seeing xetHash would go around the mirror).
 */
export function sanitizeEntry(item: unknown): TreeEntry | undefined {
  const e = item as Record<string, any>;
  if (!e || (e.type !== 'file' && e.type !== 'directory') || typeof e.path !== 'string' || typeof e.oid !== 'string') return undefined;
  if (!/^[0-9a-f]{40}$/.test(e.oid) || !Number.isSafeInteger(Number(e.size ?? 0))) return undefined;
  if (e.path.split('/').some((part: string) => part === '' || part === '.' || part === '..') || e.path.includes('\\') || e.path.startsWith('/')) return undefined;
  const entry: TreeEntry = { type: e.type, path: e.path, oid: e.oid, size: Number(e.size ?? 0) };
  const lfs = e.lfs;
  if (e.type === 'file' && lfs && typeof lfs.oid === 'string' && /^[0-9a-f]{64}$/.test(lfs.oid) && Number.isSafeInteger(Number(lfs.size))) {
    entry.lfs = { oid: lfs.oid, size: Number(lfs.size), pointerSize: Number(lfs.pointerSize ?? 0) };
  }
  return entry;
}

function nextLink(link: string | undefined, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (!m) continue;
    const next = new URL(m[1], base);
    return next.origin === new URL(base).origin ? next.toString() : undefined;
  }
  return undefined;
}
