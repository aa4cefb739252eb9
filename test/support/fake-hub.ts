/**
 * A fake Hugging Face Hub on loopback for the pull pipeline's tests and the pull benchmark.
 *
 * Two real HTTP servers: the hub (API + resolve) and a "CDN" on a different host name, so clients
 * can be checked for dropping Authorization on cross-host redirects. Protocol details follow
 * /work/shared/reference/hf-protocol.md. Only node's own modules are used.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createCipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AddressInfo } from 'node:net';

export interface FakeFile {
  /** Path inside the repo, `/`-separated, no leading slash. */
  path: string;
  /** The file's bytes. Wins over `size`/`seed`. */
  content?: Buffer;
  /** Size of a generated file: deterministic pseudo-random bytes made on the fly, never held in memory. */
  size?: number;
  /** Seed of a generated file's bytes. @defaultValue 0 */
  seed?: number;
  /** Stored in LFS (served through the CDN redirect). @defaultValue true for files > 10 MiB or *.gguf / *.safetensors */
  lfs?: boolean;
  /** GETs without a Range header are answered 400, as the Hub's Xet bridge does for very large files. */
  requireRange?: boolean;
}

export interface FakeRepo {
  /** `org/name`. */
  id: string;
  files: FakeFile[];
  /** 40-hex commit every branch points to. @defaultValue random */
  revision?: string;
  /** Requests without `Authorization: Bearer {token}` get 401 GatedRepo. */
  gated?: boolean;
  /** Requests without the token get 401 RepoNotFound, as the Hub hides private repos. */
  private?: boolean;
  /** Branch (or ref, e.g. `refs/pr/1`) names. @defaultValue ['main'] */
  branches?: string[];
}

/**
 * Faults apply to the file's GETs in the order they were queued; one with `atByte` applies only
 * to a response whose body starts at that byte (a part of a parallel download), out of order.
 */
export type Fault = (
  | { kind: 'cut'; afterBytes: number; times?: number }
  | { kind: 'stall'; afterBytes: number; ms: number; times?: number }
  | { kind: 'corrupt'; times?: number }
  | { kind: 'ignore-range'; times?: number }
  /** The body is sent with Transfer-Encoding: chunked instead of a Content-Length. */
  | { kind: 'chunked'; times?: number }
  | { kind: 'status'; status: 429 | 500 | 502 | 503 | 504 | 416; retryAfter?: number; times?: number }
  | { kind: 'slow'; bytesPerSecond: number }
  /** The response head of a ranged GET waits this long (a slow resumed response, to hit a race). */
  | { kind: 'delay'; ms: number; times?: number }
) & { atByte?: number };

export interface RequestLog {
  host: 'hub' | 'cdn';
  method: string;
  /** The request target as received: path and query string. */
  path: string;
  range?: string;
  authorization?: string;
  /** 0 until the response's status line is written. */
  status: number;
  /** Date.now() when the request arrived. */
  time: number;
  /** Body bytes written to the response so far (what "fetched from the CDN" counts). */
  bytes: number;
}

export interface FakeHub {
  /** Hub endpoint (HF_ENDPOINT), e.g. http://127.0.0.1:PORT */
  url: string;
  /** The CDN, on another host name than `url`. */
  cdnUrl: string;
  /** The valid token for gated and private repos. */
  token: string;
  /** Adds a repo, replacing one with the same id. */
  addRepo(repo: FakeRepo): void;
  /** Resolve and API calls on `fromRepoId` answer 307 with a relative Location on `toRepoId`. */
  rename(fromRepoId: string, toRepoId: string): void;
  fault(repoId: string, path: string, fault: Fault): void;
  /** Every CDN URL signed until now answers 403 from now on, as an expired signed URL does; the hub signs new ones. */
  expireSignedUrls(): void;
  clearFaults(): void;
  log: RequestLog[];
  sha256(repoId: string, path: string): Promise<string>;
  close(): Promise<void>;
}

/** Options of {@link startFakeHub}. */
export interface FakeHubOptions {
  /** Entries per page of the tree API. @defaultValue 50 */
  pageSize?: number;
  /** Serve the hub and the CDN over https with this certificate (it must name 127.0.0.1 and 127.0.0.2). */
  tls?: { cert: Buffer; key: Buffer };
  /** Address the hub listens on. @defaultValue '127.0.0.1' */
  host?: string;
  /** Address the CDN listens on (another port of `host` is another origin). @defaultValue 127.0.0.2, else localhost */
  cdnHost?: string;
}

const CHUNK = 1024 * 1024;
/** Read-only zeros that AES-CTR turns into keystream: the only buffer a generated chunk costs is its output. */
const ZEROS = Buffer.alloc(CHUNK);
/** The Hub refuses non-LFS files above 10 MiB, so anything bigger is LFS there. */
const LFS_THRESHOLD = 10 * 1024 * 1024;
const LFS_EXTENSIONS = /\.(gguf|safetensors)$/i;

/** Size of a fake file in bytes. */
export function sizeOf(file: FakeFile): number {
  return file.content ? file.content.length : (file.size ?? 0);
}

function isLfs(file: FakeFile): boolean {
  return file.lfs ?? (sizeOf(file) > LFS_THRESHOLD || LFS_EXTENSIONS.test(file.path));
}

/**
 * The bytes of `file` from `start` (inclusive) to `end` (exclusive), in pieces of at most 1 MiB.
 * Generated files are AES-128-CTR keystream keyed by the seed: fast, deterministic, and seekable
 * because the counter of any 16-byte block is just its index.
 */
export async function* contentOf(file: FakeFile, start = 0, end = sizeOf(file)): AsyncGenerator<Buffer> {
  end = Math.min(end, sizeOf(file));
  if (start >= end) return;
  if (file.content) {
    for (let at = start; at < end; at += CHUNK) yield file.content.subarray(at, Math.min(at + CHUNK, end));
    return;
  }
  const first = Math.floor(start / CHUNK);
  const cipher = createCipheriv('aes-128-ctr', seedKey(file.seed ?? 0), counterBlock((first * CHUNK) / 16));
  for (let index = first; index * CHUNK < end; index++) {
    const chunkStart = index * CHUNK;
    const chunk = cipher.update(ZEROS.subarray(0, Math.min(CHUNK, sizeOf(file) - chunkStart)));
    yield chunk.subarray(Math.max(0, start - chunkStart), Math.min(chunk.length, end - chunkStart));
  }
}

function seedKey(seed: number): Buffer {
  return createHash('sha256').update(`ferry-fake-hub:${seed}`).digest().subarray(0, 16);
}

function counterBlock(blockIndex: number): Buffer {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(blockIndex), 8);
  return iv;
}

/** Digests are computed once per file object, by streaming, and only when first asked for. */
const digestCache = new WeakMap<FakeFile, { sha256?: Promise<string>; gitSha1?: Promise<string> }>();

function cached(file: FakeFile, key: 'sha256' | 'gitSha1', compute: () => Promise<string>): Promise<string> {
  let entry = digestCache.get(file);
  if (!entry) digestCache.set(file, (entry = {}));
  return (entry[key] ??= compute());
}

async function streamHash(algorithm: string, file: FakeFile, prefix?: string): Promise<string> {
  const hash = createHash(algorithm);
  if (prefix !== undefined) hash.update(prefix);
  for await (const chunk of contentOf(file)) hash.update(chunk);
  return hash.digest('hex');
}

function fileSha256(file: FakeFile): Promise<string> {
  return cached(file, 'sha256', () => streamHash('sha256', file));
}

function gitBlobSha1(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

function lfsPointer(sha256: string, size: number): Buffer {
  return Buffer.from(`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256}\nsize ${size}\n`);
}

/** What the Hub gives as a file's git oid: the blob sha1 of its content, or of its LFS pointer. */
function fileGitOid(file: FakeFile): Promise<string> {
  return cached(file, 'gitSha1', async () =>
    isLfs(file)
      ? gitBlobSha1(lfsPointer(await fileSha256(file), sizeOf(file)))
      : streamHash('sha1', file, `blob ${sizeOf(file)}\0`),
  );
}

interface RepoState {
  repo: FakeRepo;
  commit: string;
  branches: string[];
  files: Map<string, FakeFile>;
}

interface QueuedFault {
  fault: Exclude<Fault, { kind: 'slow' }>;
  left: number;
}

interface FileFaults {
  queue: QueuedFault[];
  /** A standing throttle, not queued: it must last for a whole cancel test. */
  bytesPerSecond?: number;
  /** Standing throttles of the responses that start at a given byte. */
  bytesPerSecondAt?: Map<number, number>;
}

/** What one body response suffers, taken from the file's fault queue. */
interface BodyPlan {
  cutAfter?: number;
  stall?: { afterBytes: number; ms: number };
  corrupt?: boolean;
  bytesPerSecond?: number;
}

/** An answer other than success; `code` becomes the Hub's X-Error-Code header. */
class HttpError {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    readonly message: string,
    readonly headers: Record<string, string> = {},
  ) {}
}

const DIRECT_FAULT_KINDS = new Set(['cut', 'stall', 'corrupt']);

/** Starts the hub on 127.0.0.1 and the CDN on 127.0.0.2 (else on `localhost`), both on free ports. */
export async function startFakeHub(opts: FakeHubOptions = {}): Promise<FakeHub> {
  const pageSize = opts.pageSize ?? 50;
  const token = `hf_fake_${randomBytes(12).toString('hex')}`;
  let signingKey = randomBytes(32);
  const repos = new Map<string, RepoState>();
  const renames = new Map<string, string>();
  const faults = new Map<string, FileFaults>();
  const log: RequestLog[] = [];
  const closing = new AbortController();

  const serve = (listener: RequestListener): Server => (opts.tls ? createHttpsServer(opts.tls, listener) : createServer(listener));
  const hubServer = serve((req, res) => handle('hub', req, res, routeHub));
  const cdnServer = serve((req, res) => handle('cdn', req, res, routeCdn));
  const hubHost = opts.host ?? '127.0.0.1';
  const hubPort = await listen(hubServer, hubHost);
  const cdnHost = opts.cdnHost ? `${opts.cdnHost}:${await listen(cdnServer, opts.cdnHost)}` : await listenOnOtherHost(cdnServer);
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://${hubHost}:${hubPort}`;
  const cdnUrl = `${scheme}://${cdnHost}`;

  function handle(
    host: 'hub' | 'cdn',
    req: IncomingMessage,
    res: ServerResponse,
    route: (req: IncomingMessage, res: ServerResponse, signal: AbortSignal) => Promise<void>,
  ): void {
    const entry: RequestLog = {
      host,
      method: req.method ?? 'GET',
      path: req.url ?? '/',
      range: req.headers.range,
      authorization: req.headers.authorization,
      status: 0,
      time: Date.now(),
      bytes: 0,
    };
    log.push(entry);
    const writeBody = res.write;
    res.write = function (this: ServerResponse, chunk: unknown, ...rest: unknown[]) {
      if (chunk && typeof (chunk as Buffer).length === 'number') entry.bytes += (chunk as Buffer).length;
      return (writeBody as (...a: unknown[]) => boolean).apply(this, [chunk, ...rest]);
    } as typeof writeBody;
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: Parameters<typeof writeHead>) {
      entry.status = args[0];
      return writeHead.apply(this, args);
    } as typeof writeHead;
    // Ends stalls and throttles as soon as the client goes away or the hub closes.
    const gone = new AbortController();
    res.on('close', () => gone.abort());
    route(req, res, AbortSignal.any([gone.signal, closing.signal])).catch((error: unknown) => {
      if (error instanceof HttpError) return sendError(req, res, error);
      if (!res.headersSent) return sendError(req, res, new HttpError(500, undefined, String(error)));
      res.destroy();
    });
  }

  async function routeHub(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const target = new URL(req.url ?? '/', url);
    const segments = target.pathname.split('/').slice(1);
    const isApi = segments[0] === 'api' && segments[1] === 'models';
    const [org, name, action, ...rest] = isApi ? segments.slice(2) : segments;
    if (!org || !name) throw new HttpError(404, undefined, 'Not Found');
    const repoId = `${decodeURIComponent(org)}/${decodeURIComponent(name)}`;
    const renamedTo = renames.get(repoId);
    if (renamedTo !== undefined) {
      const prefix = isApi ? '/api/models/' : '/';
      const tail = target.pathname.slice(prefix.length + org.length + 1 + name.length);
      return redirectRenamed(res, `${prefix}${renamedTo}${tail}${target.search}`);
    }
    const state = authorize(req, repoId);
    if (isApi && action === undefined) return sendJson(req, res, await modelInfo(state, state.commit, true));
    if (isApi && action === 'tree') return listTree(req, res, state, target, rest);
    if (isApi && action === 'revision') {
      const { revision } = splitRevision(rest);
      return sendJson(req, res, await modelInfo(state, resolveRevision(state, revision), target.searchParams.get('blobs') === 'true'));
    }
    if (isApi && action === 'paths-info' && req.method === 'POST') return pathsInfo(req, res, state, rest);
    if (!isApi && action === 'resolve') return resolveFile(req, res, state, rest, signal);
    throw new HttpError(404, undefined, 'Not Found');
  }

  /** Relative on purpose, as the Hub does: clients must keep Authorization on same-host redirects. */
  function redirectRenamed(res: ServerResponse, location: string): void {
    res.writeHead(307, { Location: location, 'Content-Length': 0 });
    res.end();
  }

  function authorize(req: IncomingMessage, repoId: string): RepoState {
    const state = repos.get(repoId);
    const authorized = req.headers.authorization === `Bearer ${token}`;
    if (!state || (state.repo.private && !authorized)) {
      throw new HttpError(401, 'RepoNotFound', `Repository Not Found for url: ${req.url}.`);
    }
    if (state.repo.gated && !authorized) {
      throw new HttpError(401, 'GatedRepo', `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it.`);
    }
    return state;
  }

  /** Splits `{revision}/{path...}`; `refs/pr/N` may come URL-encoded as one segment or as three. */
  function splitRevision(segments: string[]): { revision: string; path: string } {
    const decoded = segments.map((s) => decodeURIComponent(s));
    const refLength = decoded[0] === 'refs' && (decoded[1] === 'pr' || decoded[1] === 'convert') ? 3 : 1;
    return { revision: decoded.slice(0, refLength).join('/'), path: decoded.slice(refLength).join('/') };
  }

  function resolveRevision(state: RepoState, revision: string): string {
    if (revision === state.commit || state.branches.includes(revision)) return state.commit;
    throw new HttpError(404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
  }

  async function listTree(req: IncomingMessage, res: ServerResponse, state: RepoState, target: URL, rest: string[]): Promise<void> {
    const { revision, path: base } = splitRevision(rest);
    resolveRevision(state, revision);
    const entries = treeEntries(state, base, target.searchParams.get('recursive') === 'true');
    const offset = Number(target.searchParams.get('cursor') ? Buffer.from(target.searchParams.get('cursor')!, 'base64url').toString() : 0);
    const page = entries.slice(offset, offset + pageSize);
    const headers: Record<string, string> = {};
    if (offset + pageSize < entries.length) {
      const next = new URL(target.pathname + target.search, url);
      next.searchParams.set('cursor', Buffer.from(String(offset + pageSize)).toString('base64url'));
      headers.Link = `<${next.href}>; rel="next"`;
    }
    sendJson(req, res, await Promise.all(page.map((entry) => describeEntry(entry))), headers);
  }

  function treeEntries(state: RepoState, base: string, recursive: boolean): Array<FakeFile | string> {
    const directories = new Set<string>();
    for (const path of state.files.keys()) {
      const parts = path.split('/');
      for (let i = 1; i < parts.length; i++) directories.add(parts.slice(0, i).join('/'));
    }
    if (base !== '' && !directories.has(base)) throw new HttpError(404, 'EntryNotFound', `${base} does not exist on "${state.repo.id}"`);
    const prefix = base === '' ? '' : `${base}/`;
    const inScope = (path: string) => path.startsWith(prefix) && (recursive || !path.slice(prefix.length).includes('/'));
    const all: Array<FakeFile | string> = [...[...directories].filter(inScope), ...[...state.files.values()].filter((f) => inScope(f.path))];
    return all.sort((a, b) => entryPath(a).localeCompare(entryPath(b)));
  }

  async function describeEntry(entry: FakeFile | string): Promise<object> {
    if (typeof entry === 'string') {
      return { type: 'directory', oid: createHash('sha1').update(`tree ${entry}`).digest('hex'), size: 0, path: entry };
    }
    const base = { type: 'file', oid: await fileGitOid(entry), size: sizeOf(entry), path: entry.path };
    if (!isLfs(entry)) return base;
    const sha256 = await fileSha256(entry);
    return { ...base, lfs: { oid: sha256, size: sizeOf(entry), pointerSize: lfsPointer(sha256, sizeOf(entry)).length } };
  }

  /** POST paths-info: JSON `{paths, expand}` or a form with `paths`; `expand` adds `lastCommit` (here: the repo's one commit). */
  async function pathsInfo(req: IncomingMessage, res: ServerResponse, state: RepoState, rest: string[]): Promise<void> {
    const { revision } = splitRevision(rest);
    const commit = resolveRevision(state, revision);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let paths: string[] = [];
    let expand = false;
    if ((req.headers['content-type'] ?? '').includes('json')) {
      const body = JSON.parse(text || '{}') as { paths?: string[]; expand?: boolean };
      paths = Array.isArray(body.paths) ? body.paths : [];
      expand = body.expand === true;
    } else {
      const form = new URLSearchParams(text);
      paths = form.getAll('paths');
      expand = form.get('expand') === 'true';
    }
    const found = treeEntries(state, '', true).filter((entry) => paths.includes(entryPath(entry)));
    const described = await Promise.all(found.map((entry) => describeEntry(entry)));
    sendJson(req, res, expand ? described.map((d) => ({ ...d, lastCommit: { id: commit, title: 'fake commit', date: '2026-01-01T00:00:00.000Z' } })) : described);
  }

  async function modelInfo(state: RepoState, commit: string, blobs: boolean): Promise<object> {
    const siblings = await Promise.all(
      [...state.files.values()].map(async (file) => {
        if (!blobs) return { rfilename: file.path };
        const sibling = { rfilename: file.path, size: sizeOf(file), blobId: await fileGitOid(file) };
        if (!isLfs(file)) return sibling;
        const sha256 = await fileSha256(file);
        return { ...sibling, lfs: { sha256, size: sizeOf(file), pointerSize: lfsPointer(sha256, sizeOf(file)).length } };
      }),
    );
    const { id } = state.repo;
    return { _id: commit.slice(0, 24), id, modelId: id, sha: commit, private: !!state.repo.private, gated: state.repo.gated ? 'auto' : false, disabled: false, tags: [], siblings };
  }

  async function resolveFile(req: IncomingMessage, res: ServerResponse, state: RepoState, rest: string[], signal: AbortSignal): Promise<void> {
    const { revision, path } = splitRevision(rest);
    const commit = resolveRevision(state, revision);
    const file = state.files.get(path);
    if (!file) throw new HttpError(404, 'EntryNotFound', `${path} does not exist on "${revision}"`);
    if (req.method === 'GET') takeStatusFault(state.repo.id, path, sizeOf(file), req.headers.range);
    if (!isLfs(file)) {
      const etag = `"${await fileGitOid(file)}"`;
      return serveContent(req, res, state.repo.id, file, { 'X-Repo-Commit': commit, ETag: etag }, signal);
    }
    const sha256 = await fileSha256(file);
    const location = signedBlobUrl(state.repo.id, path, sha256);
    const body = `Found. Redirecting to ${location}`;
    res.writeHead(302, {
      Location: location,
      'X-Repo-Commit': commit,
      ETag: `"${sha256}"`,
      'X-Linked-Etag': `"${sha256}"`,
      'X-Linked-Size': String(sizeOf(file)),
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  }

  function signedBlobUrl(repoId: string, path: string, sha256: string): string {
    const blob = new URL(`/blobs/${sha256}`, cdnUrl);
    blob.searchParams.set('repo', repoId);
    blob.searchParams.set('file', path);
    blob.searchParams.set('expires', String(Math.floor(Date.now() / 1000) + 3600));
    blob.searchParams.set('signature', signBlob(blob.searchParams, sha256));
    return blob.href;
  }

  function signBlob(params: URLSearchParams, sha256: string): string {
    return createHmac('sha256', signingKey).update(`${sha256}\n${params.get('repo')}\n${params.get('file')}\n${params.get('expires')}`).digest('hex');
  }

  async function routeCdn(req: IncomingMessage, res: ServerResponse, signal: AbortSignal): Promise<void> {
    const target = new URL(req.url ?? '/', cdnUrl);
    const match = /^\/blobs\/([0-9a-f]{64})$/.exec(target.pathname);
    if (!match || (req.method !== 'GET' && req.method !== 'HEAD')) throw new HttpError(404, undefined, 'Not Found');
    const sha256 = match[1];
    const given = Buffer.from(target.searchParams.get('signature') ?? '', 'hex');
    const expected = Buffer.from(signBlob(target.searchParams, sha256), 'hex');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new HttpError(403, undefined, 'Bad or missing signature');
    const repoId = target.searchParams.get('repo') ?? '';
    const file = repos.get(repoId)?.files.get(target.searchParams.get('file') ?? '');
    if (!file || (await fileSha256(file)) !== sha256) throw new HttpError(404, undefined, 'NoSuchKey');
    if (req.method === 'GET') takeStatusFault(repoId, file.path, sizeOf(file), req.headers.range);
    return serveContent(req, res, repoId, file, { ETag: `"${sha256}"` }, signal);
  }

  /** Serves the file's bytes (whole or a range), applying the file's queued body faults. */
  async function serveContent(
    req: IncomingMessage,
    res: ServerResponse,
    repoId: string,
    file: FakeFile,
    headers: Record<string, string>,
    signal: AbortSignal,
  ): Promise<void> {
    const size = sizeOf(file);
    const isGet = req.method === 'GET';
    let range = parseRange(req.headers.range, size);
    const start0 = range && range !== 'unsatisfiable' ? range[0] : 0;
    if (isGet && file.requireRange && !req.headers.range) throw new HttpError(400, undefined, 'Range header required for this file');
    if (range && isGet) {
      const delay = takeFault(repoId, file.path, (f) => f.kind === 'delay', start0);
      if (delay?.kind === 'delay' && !(await pause(delay.ms, signal))) return;
    }
    if (range && isGet && takeFault(repoId, file.path, (f) => f.kind === 'ignore-range', start0)) range = undefined;
    if (range === 'unsatisfiable') {
      throw new HttpError(416, undefined, 'Range Not Satisfiable', { 'Content-Range': `bytes */${size}` });
    }
    const [start, end] = range ?? [0, size];
    const chunked = isGet && takeFault(repoId, file.path, (f) => f.kind === 'chunked', start) !== undefined;
    res.writeHead(range ? 206 : 200, {
      ...headers,
      'Content-Type': 'application/octet-stream',
      ...(chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': end - start }),
      'Accept-Ranges': 'bytes',
      ...(range ? { 'Content-Range': `bytes ${start}-${end - 1}/${size}` } : {}),
    });
    if (!isGet) return void res.end();
    const plan = bodyPlan(repoId, file.path, start);
    await sendBody(res, contentOf(file, start, end), end - start, plan, signal);
  }

  function bodyPlan(repoId: string, path: string, start: number): BodyPlan {
    const taken = takeFault(repoId, path, (f) => DIRECT_FAULT_KINDS.has(f.kind), start);
    const standing = faults.get(faultKey(repoId, path));
    const plan: BodyPlan = { bytesPerSecond: standing?.bytesPerSecondAt?.get(start) ?? standing?.bytesPerSecond };
    if (taken?.kind === 'cut') plan.cutAfter = taken.afterBytes;
    if (taken?.kind === 'stall') plan.stall = { afterBytes: taken.afterBytes, ms: taken.ms };
    if (taken?.kind === 'corrupt') plan.corrupt = true;
    return plan;
  }

  function takeStatusFault(repoId: string, path: string, size: number, rangeHeader: string | undefined): void {
    const range = parseRange(rangeHeader, size);
    const taken = takeFault(repoId, path, (f) => f.kind === 'status', Array.isArray(range) ? range[0] : 0);
    if (taken?.kind !== 'status') return;
    const headers: Record<string, string> = {};
    if (taken.status === 416) headers['Content-Range'] = `bytes */${size}`;
    if (taken.retryAfter !== undefined) headers['Retry-After'] = String(taken.retryAfter);
    throw new HttpError(taken.status, undefined, `Injected ${taken.status}`, headers);
  }

  /**
   * Consumes one use of a fault that `applies` to this response (whose body starts at `start`):
   * one queued for that very byte, else the head of the file's queue; faults apply in order.
   */
  function takeFault(repoId: string, path: string, applies: (f: QueuedFault['fault']) => boolean, start: number): QueuedFault['fault'] | undefined {
    const queue = faults.get(faultKey(repoId, path))?.queue;
    if (!queue) return undefined;
    let index = queue.findIndex((q) => q.fault.atByte === start && applies(q.fault));
    if (index < 0) {
      index = queue.findIndex((q) => q.fault.atByte === undefined);
      if (index < 0 || !applies(queue[index].fault)) return undefined;
    }
    const taken = queue[index];
    if (--taken.left <= 0) queue.splice(index, 1);
    return taken.fault;
  }

  const hub: FakeHub = {
    url,
    cdnUrl,
    token,
    log,
    addRepo(repo) {
      const commit = repo.revision ?? randomBytes(20).toString('hex');
      if (!/^[0-9a-f]{40}$/.test(commit)) throw new Error(`revision must be 40 lowercase hex digits, got ${commit}`);
      const files = new Map(repo.files.map((file) => [file.path, file]));
      repos.set(repo.id, { repo, commit, branches: repo.branches ?? ['main'], files });
      renames.delete(repo.id);
    },
    rename(fromRepoId, toRepoId) {
      const state = repos.get(fromRepoId);
      if (state) {
        repos.delete(fromRepoId);
        repos.set(toRepoId, { ...state, repo: { ...state.repo, id: toRepoId } });
      }
      renames.set(fromRepoId, toRepoId);
    },
    fault(repoId, path, fault) {
      const key = faultKey(repoId, path);
      const entry = faults.get(key) ?? { queue: [] };
      faults.set(key, entry);
      if (fault.kind === 'slow' && fault.atByte !== undefined) (entry.bytesPerSecondAt ??= new Map()).set(fault.atByte, fault.bytesPerSecond);
      else if (fault.kind === 'slow') entry.bytesPerSecond = fault.bytesPerSecond;
      else entry.queue.push({ fault, left: fault.times ?? 1 });
    },
    clearFaults() {
      faults.clear();
    },
    expireSignedUrls() {
      signingKey = randomBytes(32);
    },
    async sha256(repoId, path) {
      const file = repos.get(renames.get(repoId) ?? repoId)?.files.get(path);
      if (!file) throw new Error(`fake hub: no file ${path} in ${repoId}`);
      return fileSha256(file);
    },
    async close() {
      closing.abort();
      await Promise.all([hubServer, cdnServer].map((server) => closeServer(server)));
    },
  };
  return hub;
}

function faultKey(repoId: string, path: string): string {
  return `${repoId}\0${path}`;
}

function entryPath(entry: FakeFile | string): string {
  return typeof entry === 'string' ? entry : entry.path;
}

/** `[start, end)` for a single `bytes=` range; undefined when absent or not understood (serve it all, as servers do). */
function parseRange(header: string | undefined, size: number): [number, number] | 'unsatisfiable' | undefined {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    return suffix === 0 || size === 0 ? 'unsatisfiable' : [Math.max(0, size - suffix), size];
  }
  const start = Number(match[1]);
  if (start >= size) return 'unsatisfiable';
  const last = match[2] === '' ? size - 1 : Number(match[2]);
  if (last < start) return undefined;
  return [start, Math.min(last, size - 1) + 1];
}

/**
 * Streams `length` bytes with backpressure: waits for 'drain' whenever write() says so, and never
 * copies a chunk except the one that gets a byte flipped.
 */
async function sendBody(res: ServerResponse, chunks: AsyncIterable<Buffer>, length: number, plan: BodyPlan, signal: AbortSignal): Promise<void> {
  const corruptAt = plan.corrupt && length > 0 ? Math.floor(length / 2) : -1;
  let sent = 0;
  if (plan.cutAfter === 0) return cut(res);
  if (plan.stall?.afterBytes === 0 && !(await pause(plan.stall.ms, signal))) return;
  for await (let chunk of chunks) {
    if (corruptAt >= sent && corruptAt < sent + chunk.length) {
      chunk = Buffer.from(chunk);
      chunk[corruptAt - sent] ^= 0xff;
    }
    while (chunk.length > 0) {
      const stop = nextStop(sent, plan);
      const piece = stop === undefined || stop - sent >= chunk.length ? chunk : chunk.subarray(0, stop - sent);
      chunk = chunk.subarray(piece.length);
      if (!(await write(res, piece, plan.bytesPerSecond, signal))) return;
      sent += piece.length;
      if (sent === plan.cutAfter) return cut(res);
      if (sent === plan.stall?.afterBytes && !(await pause(plan.stall.ms, signal))) return;
    }
  }
  res.end();
}

function nextStop(sent: number, plan: BodyPlan): number | undefined {
  const stops = [plan.cutAfter, plan.stall?.afterBytes].filter((s): s is number => s !== undefined && s > sent);
  return stops.length ? Math.min(...stops) : undefined;
}

/** Writes one piece, throttled to `bytesPerSecond` if set; false once the client is gone. */
async function write(res: ServerResponse, piece: Buffer, bytesPerSecond: number | undefined, signal: AbortSignal): Promise<boolean> {
  if (!bytesPerSecond) return writeRaw(res, piece, signal);
  // Tenth-of-a-second slices keep the rate smooth enough for cancel tests without a timer per byte.
  const slice = Math.max(1, Math.floor(bytesPerSecond / 10));
  for (let at = 0; at < piece.length; at += slice) {
    const part = piece.subarray(at, at + slice);
    if (!(await writeRaw(res, part, signal))) return false;
    if (!(await pause((part.length / bytesPerSecond) * 1000, signal))) return false;
  }
  return true;
}

async function writeRaw(res: ServerResponse, piece: Buffer, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted || res.destroyed) return false;
  if (!res.write(piece)) await drainOrAbort(res, signal);
  return !signal.aborted && !res.destroyed;
}

function drainOrAbort(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.on('drain', done);
    signal.addEventListener('abort', done);
  });
}

/** Resolves false when aborted (client gone or hub closing) instead of holding the server open. */
async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await sleep(ms, undefined, { signal });
    return true;
  } catch {
    return false;
  }
}

/** Destroys the socket only after what was written reached it, so the client sees exactly the bytes before the cut. */
async function cut(res: ServerResponse): Promise<void> {
  // headersSent turns true at writeHead, before anything reached the socket: flush regardless.
  res.flushHeaders();
  const socket = res.socket;
  if (!socket || socket.destroyed) return;
  await new Promise<void>((resolve) => socket.write(Buffer.alloc(0), () => resolve()));
  socket.destroy();
}

function sendJson(req: IncomingMessage, res: ServerResponse, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(200, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}

function sendError(req: IncomingMessage, res: ServerResponse, error: HttpError): void {
  if (res.headersSent) return void res.destroy();
  const body = JSON.stringify({ error: error.message });
  const headers: Record<string, string | number> = { ...error.headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) };
  if (error.code) headers['X-Error-Code'] = error.code;
  if (error.code) headers['X-Error-Message'] = error.message.replace(/[^\x20-\x7e]/g, '?');
  res.writeHead(error.status, headers);
  res.end(req.method === 'HEAD' ? undefined : body);
}

function listen(server: Server, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Linux routes all of 127/8 to lo; elsewhere `localhost` is at least another host name than 127.0.0.1. */
async function listenOnOtherHost(server: Server): Promise<string> {
  try {
    return `127.0.0.2:${await listen(server, '127.0.0.2')}`;
  } catch {
    const { address } = await lookup('localhost');
    return `localhost:${await listen(server, address)}`;
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
