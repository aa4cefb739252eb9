import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import got, { type Got } from 'got';
import { FerryError } from '../../errors/ferry-error.js';
import { copyStreamIntoSink, type ByteSink } from '../../util/byte-sink.js';
import { socketGet } from '../http/socket-get.js';
import { header, hubError, RetryableHubError } from './hub-errors.js';
import { assertListedPath } from './listed-path.js';

export interface HfClientOptions {
  /** `HF_ENDPOINT`, e.g. https://huggingface.co or a mirror. */
  endpoint: string;
  /** Sent to the hub host only; dropped on redirects to another host (the CDN URL is signed). */
  token?: string;
  /** Per-request timeout for metadata calls. @defaultValue 30000 */
  timeoutMs?: number;
}

/** A file's body, once the response head is in. */
export interface DownloadBody {
  /** Reads the body to its end into `sink`; `onData` sees each piece first, in order (the downloader hashes there). */
  readInto(sink: ByteSink, onData: (bytes: Buffer) => void): Promise<void>;
  /** Stops reading; a readInto in progress rejects with `err`. */
  destroy(err?: Error): void;
}

export interface DownloadResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: DownloadBody;
}

/** A file in a repo as the tree API lists it. */
export interface HubFile {
  path: string;
  size: number;
  /** SHA-256 of the content, for LFS files only. */
  sha256?: string;
  /** Git blob sha1 (all files); the only digest the Hub has for files kept in git. */
  gitSha1?: string;
}

/** What a HEAD on `resolve` tells about one file. */
export interface ResolvedFile {
  url: string;
  commit?: string;
  sha256?: string;
  gitSha1?: string;
  size?: number;
}

const MAX_REDIRECTS = 5;
/** What a CDN answers once the signed URL behind the hub's redirect has expired. */
const EXPIRED_URL_STATUS: ReadonlySet<number> = new Set([401, 403, 410]);
const BODY_HEADERS = { 'accept-encoding': 'identity', 'user-agent': 'ferry/0.1' };
/** No response headers within this long: the attempt fails (and is retried). Body stalls are the downloader's watchdog's. */
const RESPONSE_TIMEOUT_MS = 60_000;

/**
 * One GET whose body the caller reads. Bodies framed by Content-Length (every Hub and CDN
 * answer seen) are read by socketGet straight into the caller's memory; a chunked one falls
 * back to node's http client, asked a second time. Redirects, auth and errors are HfClient's.
 */
async function get(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<DownloadResponse> {
  const response = await socketGet(url, headers, { signal, headTimeoutMs: RESPONSE_TIMEOUT_MS });
  if (!response.chunked) return { status: response.status, headers: response.headers, body: response };
  response.destroy();
  const message = await nodeGet(url, headers, signal);
  return {
    status: message.statusCode!,
    headers: message.headers,
    body: { readInto: (sink, onData) => copyStreamIntoSink(message, sink, onData), destroy: (err) => message.destroy(err) },
  };
}

function nodeGet(url: string, headers: Record<string, string>, signal?: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = send(url, { headers, signal }, resolve);
    req.setTimeout(RESPONSE_TIMEOUT_MS, () => req.destroy(Object.assign(new Error('no response within 60 s'), { code: 'ETIMEDOUT' })));
    req.once('response', () => req.setTimeout(0));
    req.once('error', reject);
    req.end();
  });
}

/** The Hub's HTTP protocol (shared/reference/hf-protocol.md), spoken with got and with got's own retries off: the caller decides what to retry. */
export class HfClient {
  private readonly http: Got;
  readonly endpoint: string;
  private readonly hubOrigin: string;

  constructor(readonly options: HfClientOptions) {
    this.endpoint = options.endpoint.replace(/\/+$/, '');
    this.hubOrigin = new URL(this.endpoint).origin;
    this.http = got.extend({
      retry: { limit: 0 },
      throwHttpErrors: false,
      followRedirect: false,
      decompress: false,
      headers: { 'accept-encoding': 'identity', 'user-agent': 'ferry/0.1' },
      timeout: { request: options.timeoutMs ?? 30_000 },
    });
  }

  resolveUrl(repo: string, revision: string, path: string): string {
    const file = path.split('/').map(encodeURIComponent).join('/');
    return `${this.endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file}`;
  }

  /** All files of a repo at a revision, following the tree API's `Link: rel="next"` pages. */
  async listFiles(repo: string, revision: string, signal?: AbortSignal): Promise<HubFile[]> {
    const files: HubFile[] = [];
    let url: string | undefined = `${this.endpoint}/api/models/${repo}/tree/${encodeURIComponent(revision)}?recursive=true`;
    for (let page = 0; url && page < 1000; page++) {
      const res = await this.getFollowingSameOrigin(url, `${repo}@${revision}`, signal);
      let items: unknown;
      try {
        items = JSON.parse(res.body);
      } catch {
        throw new FerryError('source.bad_response', `${repo}: the tree API did not answer JSON`);
      }
      if (!Array.isArray(items)) throw new FerryError('source.bad_response', `${repo}: the tree API did not answer a list`);
      for (const item of items as Array<Record<string, any>>) {
        if (item?.type !== 'file') continue;
        // One bad entry fails the whole listing: a pull never picks around hostile names.
        files.push({
          path: assertListedPath(item.path, repo),
          size: Number(item.lfs?.size ?? item.size ?? 0),
          sha256: typeof item.lfs?.oid === 'string' ? item.lfs.oid : undefined,
          gitSha1: typeof item.oid === 'string' ? item.oid : undefined,
        });
      }
      url = nextLink(header(res.headers, 'link'), url);
    }
    return files;
  }

  /**
   * HEAD on resolve without following a cross-host redirect: the hub's own answer carries
   * X-Repo-Commit, X-Linked-Etag (sha256) and X-Linked-Size; a redirect's Content-Length is not the size.
   */
  async resolveFile(repo: string, revision: string, path: string, signal?: AbortSignal): Promise<ResolvedFile> {
    let url = this.resolveUrl(repo, revision, path);
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.send('HEAD', url, `${repo}/${path}`, signal);
      const location = header(res.headers, 'location');
      const linked = unquote(header(res.headers, 'x-linked-etag'));
      const etag = unquote(header(res.headers, 'etag'));
      const info = {
        commit: header(res.headers, 'x-repo-commit'),
        sha256: linked && /^[0-9a-f]{64}$/.test(linked) ? linked : etag && /^[0-9a-f]{64}$/.test(etag) ? etag : undefined,
        gitSha1: !linked && etag && /^[0-9a-f]{40}$/.test(etag) ? etag : undefined,
        size: numberOr(header(res.headers, 'x-linked-size'), res.statusCode < 300 ? numberOr(header(res.headers, 'content-length')) : undefined),
      };
      if (res.statusCode >= 300 && res.statusCode < 400 && location) {
        const next = new URL(location, url);
        if (next.origin === new URL(url).origin) {
          url = next.toString(); // renamed repo: follow, keeping the token
          continue;
        }
        return { url: next.toString(), ...info };
      }
      return { url, ...info };
    }
    throw new FerryError('source.bad_response', `${repo}/${path}: too many redirects`);
  }

  /**
   * GET the file from byte `start`, following redirects; Authorization goes only to the hub's
   * own origin. Resolves once response headers are in; the caller reads the stream.
   */
  openDownload(repo: string, revision: string, path: string, start: number, signal?: AbortSignal): Promise<DownloadResponse> {
    return this.openUrl(this.resolveUrl(repo, revision, path), start > 0 ? `bytes=${start}-` : undefined, `${repo}/${path}`, signal);
  }

  /**
   * GET bytes `start`-`end` (inclusive) of a file at `url` (a resolved CDN URL, or the hub's
   * resolve URL), following redirects. Every request of a parallel download carries a Range,
   * the first one included: the Hub's Xet bridge refuses large GETs without one. A 401, 403 or
   * 410 from another host than the hub (the CDN: its signed URL has expired) is answered, not
   * thrown, so the caller can resolve the file again.
   */
  openRange(url: string, start: number, end: number, what: string, signal?: AbortSignal): Promise<DownloadResponse> {
    return this.openUrl(url, `bytes=${start}-${end}`, what, signal, EXPIRED_URL_STATUS);
  }

  private async openUrl(url: string, range: string | undefined, what: string, signal?: AbortSignal, cdnStatuses?: ReadonlySet<number>): Promise<DownloadResponse> {
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const response = await get(url, { ...BODY_HEADERS, ...this.authFor(url), ...(range ? { range } : {}) }, signal).catch((err) => {
        throw networkError(err, what);
      });
      const location = header(response.headers, 'location');
      if (response.status >= 300 && response.status < 400 && location) {
        response.body.destroy();
        url = new URL(location, url).toString();
        continue;
      }
      if (response.status >= 400 && response.status !== 416) {
        response.body.destroy();
        if (cdnStatuses?.has(response.status) && new URL(url).origin !== this.hubOrigin) return response;
        throw hubError(response.status, response.headers, what);
      }
      return response;
    }
    throw new FerryError('source.bad_response', `${what}: too many redirects`);
  }

  private authFor(url: string): Record<string, string> {
    return this.options.token && new URL(url).origin === this.hubOrigin ? { authorization: `Bearer ${this.options.token}` } : {};
  }

  /** API calls on a renamed repo answer a relative redirect: follow it, keeping the token. */
  private async getFollowingSameOrigin(url: string, what: string, signal?: AbortSignal) {
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const res = await this.send('GET', url, what, signal);
      const location = header(res.headers, 'location');
      if (res.statusCode < 300 || res.statusCode >= 400 || !location) return res;
      const next = new URL(location, url);
      if (next.origin !== new URL(url).origin) throw new FerryError('source.bad_response', `${what}: the API redirected to another host`);
      url = next.toString();
    }
    throw new FerryError('source.bad_response', `${what}: too many redirects`);
  }

  private async send(method: 'GET' | 'HEAD', url: string, what: string, signal?: AbortSignal) {
    let res;
    try {
      res = await this.http(url, { method, headers: this.authFor(url), signal });
    } catch (err) {
      throw networkError(err, what);
    }
    if (res.statusCode >= 400) throw hubError(res.statusCode, res.headers, what);
    return res;
  }
}

/** Network failures are retryable; an abort is passed through as is. */
function networkError(err: unknown, what: string): Error {
  const e = err as Error & { code?: string; name?: string };
  if (e?.name === 'AbortError' || e?.code === 'ABORT_ERR' || e?.code === 'ERR_ABORTED') return e;
  return new RetryableHubError(`${what}: network error ${e?.code ?? ''} ${e?.message ?? ''}`.trim());
}

function nextLink(link: string | undefined, base: string): string | undefined {
  if (!link) return undefined;
  for (const part of link.split(',')) {
    const m = /<([^>]+)>\s*;\s*rel="?next"?/.exec(part);
    if (m) return new URL(m[1], base).toString();
  }
  return undefined;
}

function unquote(value: string | undefined): string | undefined {
  return value?.replace(/^W\//, '').replace(/^"|"$/g, '');
}

function numberOr(value: string | undefined, fallback?: number): number | undefined {
  const n = value === undefined ? NaN : Number(value);
  return Number.isFinite(n) ? n : fallback;
}
