import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { MirrorService } from './mirror-service.js';
import { assertHubPath, assertHubRepo, decodeSegment, splitRevisionAndPath } from './hub-names.js';
import { mirrorError } from './mirror-errors.js';
import { etagMatches, parseByteRange } from './byte-range.js';
import type { CommitRecord, ResolvedHubFile } from './mirror-types.js';
import { StreamLimiter } from './stream-limiter.js';
import type { Readable } from 'node:stream';

export interface MirrorRoutesOptions {
  mirror: MirrorService;
}

const OUT_OF_SCOPE = /^\/hub\/(api\/)?(datasets|spaces)(\/|$)/;

/**
 * The Hub's read-only protocol under /hub, so `HF_ENDPOINT=http://ferry:8080/hub` (or hubUrl
 * for @huggingface/hub) works. Paths are parsed here from the raw URL (segment by segment, then
 * validated), so a hostile name is a 400 before any service or file is touched.
 */
export async function mirrorRoutes(app: FastifyInstance, opts: MirrorRoutesOptions): Promise<void> {
  const { mirror } = opts;
  const limiter = new StreamLimiter(mirror.deps.maxStreamsPerClient ?? 8);
  // mirror_public: the API guard lets routes marked public through without a token (Host checks still apply).
  const config: Record<string, unknown> = mirror.deps.publicRead ? { public: true } : {};
  // The Python client posts paths-info as a form; JSON is what the JS client sends.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 64 * 1024 }, (_req, body, done) => {
    const form = new URLSearchParams(body as string);
    done(null, { paths: form.getAll('paths'), expand: /^(true|1)$/i.test(form.get('expand') ?? '') });
  });

  // Ferry's own view of the cache: an API route like the others (never public).
  app.get('/api/mirror', async () => mirror.list());
  app.route({ method: ['GET', 'HEAD'], url: '/hub/api/models/*', config, handler: async (req, reply) => apiGet(req, reply) });
  app.route({ method: 'POST', url: '/hub/api/models/*', config, handler: async (req, reply) => apiPost(req, reply) });
  app.route({ method: ['GET', 'HEAD'], url: '/hub/*', config, handler: async (req, reply) => resolveRoute(req, reply) });
  app.route({ method: ['GET', 'HEAD', 'POST'], url: '/hub/api/*', config, handler: async (req) => outOfScope(req) });

  async function apiGet(req: FastifyRequest, reply: FastifyReply) {
    const { repo, action, rest } = apiTarget(req);
    const auth = req.headers.authorization;
    if (action === undefined) return modelInfo(await mirror.commitFor(repo, 'main', auth));
    if (action === 'revision') {
      const { revision, path } = splitRevisionAndPath(rest);
      if (path !== '') throw mirrorError('mirror.invalid_request', 'unexpected path after the revision');
      return modelInfo(await mirror.commitFor(repo, revision, auth));
    }
    if (action === 'tree') {
      const { revision, path } = splitRevisionAndPath(rest);
      if (path !== '') assertHubPath(path);
      const query = req.query as Record<string, string | undefined>;
      const recursive = /^(true|1)$/i.test(query.recursive ?? '');
      const page = await mirror.tree(repo, revision, { path, recursive, cursor: query.cursor }, auth);
      if (page.nextCursor) {
        // The next page is pinned to the commit, so a listing never spans two commits.
        const next = `${origin(req)}/hub/api/models/${repo}/tree/${page.commit}${path ? `/${encodePath(path)}` : ''}?recursive=${recursive}&expand=false&cursor=${page.nextCursor}`;
        reply.header('link', `<${next}>; rel="next"`);
      }
      return page.entries;
    }
    throw mirrorError('mirror.invalid_request', `unknown Hub API route`);
  }

  async function apiPost(req: FastifyRequest, reply: FastifyReply) {
    const { repo, action, rest } = apiTarget(req);
    if (action !== 'paths-info') throw mirrorError('mirror.invalid_request', 'this mirror is read-only');
    const { revision, path } = splitRevisionAndPath(rest);
    if (path !== '') throw mirrorError('mirror.invalid_request', 'unexpected path after the revision');
    const body = (req.body ?? {}) as { paths?: unknown; expand?: unknown };
    const paths = Array.isArray(body.paths) ? body.paths : typeof body.paths === 'string' ? [body.paths] : undefined;
    if (!paths || paths.length > 1000 || !paths.every((p) => typeof p === 'string')) throw mirrorError('mirror.invalid_request', 'paths must be a list of at most 1000 strings');
    for (const p of paths as string[]) assertHubPath(p);
    reply.type('application/json; charset=utf-8');
    return mirror.pathsInfo(repo, revision, paths as string[], body.expand === true, req.headers.authorization);
  }

  async function resolveRoute(req: FastifyRequest, reply: FastifyReply) {
    const segments = rawSegments(req, 1);
    if (OUT_OF_SCOPE.test(rawPath(req))) return outOfScope(req);
    const [org, name, action, ...rest] = segments;
    if (!org || !name || action !== 'resolve' || rest.length < 2) throw mirrorError('mirror.invalid_request', 'expected /hub/{org}/{name}/resolve/{revision}/{path}');
    const repo = assertHubRepo(decodeSegment(org), decodeSegment(name));
    const { revision, path } = splitRevisionAndPath(rest);
    assertHubPath(path);
    const file = await mirror.resolve(repo, revision, path, req.headers.authorization);
    return sendFile(req, reply, file);
  }

  async function sendFile(req: FastifyRequest, reply: FastifyReply, file: ResolvedHubFile) {
    reply.headers(fileHeaders(file));
    if (etagMatches(req.headers['if-none-match'], file.etag)) return reply.code(304).send();
    const range = parseByteRange(req.headers.range, file.size);
    const [start, end] = range ?? [0, file.size];
    reply.code(range ? 206 : 200);
    reply.header('content-length', end - start);
    if (range) reply.header('content-range', `bytes ${start}-${end - 1}/${file.size}`);
    if (req.method === 'HEAD') return reply.send();
    const release = limiter.acquire(req.ip);
    let body: Readable;
    try {
      body = await mirror.openBody(file, start, end);
    } catch (err) {
      release();
      throw err;
    }
    reply.raw.once('close', release);
    if (file.localPath) mirror.noteServed(file.etag);
    return reply.send(body);
  }

  function outOfScope(req: FastifyRequest): never {
    if (OUT_OF_SCOPE.test(rawPath(req))) throw mirrorError('mirror.out_of_scope', 'this mirror serves model repositories only: datasets and spaces are out of scope');
    throw mirrorError('mirror.invalid_request', 'unknown Hub API route');
  }
}

/** The Hub's headers for a file: commit, etags as the Hub gives them, size, ranges. Upstream's own headers (Xet hints) are never copied. */
function fileHeaders(file: ResolvedHubFile): Record<string, string> {
  return {
    'x-repo-commit': file.record.sha,
    etag: `"${file.etag}"`,
    // X-Linked-Etag only for LFS files, as the Hub: a client reads it as the sha256.
    ...(file.entry.lfs ? { 'x-linked-etag': `"${file.etag}"` } : {}),
    'x-linked-size': String(file.size),
    'accept-ranges': 'bytes',
    'content-type': 'application/octet-stream',
  };
}

function modelInfo(record: CommitRecord) {
  return {
    _id: record.sha.slice(0, 24),
    id: record.id,
    modelId: record.id,
    sha: record.sha,
    private: record.private,
    gated: record.gated,
    disabled: false,
    tags: [],
    siblings: record.entries
      .filter((e) => e.type === 'file')
      .map((e) => ({ rfilename: e.path, size: e.lfs?.size ?? e.size, blobId: e.oid, ...(e.lfs ? { lfs: { sha256: e.lfs.oid, size: e.lfs.size, pointerSize: e.lfs.pointerSize } } : {}) })),
  };
}

function rawPath(req: FastifyRequest): string {
  return req.url.split('?')[0];
}

/** URL segments after the first `skip` ones following `/hub`, still percent-encoded. */
function rawSegments(req: FastifyRequest, skip: number): string[] {
  return rawPath(req).split('/').slice(1 + skip);
}

function apiTarget(req: FastifyRequest): { repo: string; action?: string; rest: string[] } {
  if (OUT_OF_SCOPE.test(rawPath(req))) throw mirrorError('mirror.out_of_scope', 'datasets and spaces are out of scope for this mirror');
  const [org, name, action, ...rest] = rawSegments(req, 3);
  if (!org || !name) throw mirrorError('mirror.invalid_request', 'expected /hub/api/models/{org}/{name}');
  return { repo: assertHubRepo(decodeSegment(org), decodeSegment(name)), action: action === '' ? undefined : action, rest };
}

function encodePath(path: string): string {
  return path.split('/').map(encodeURIComponent).join('/');
}

/** The address the client used, for Link next URLs; a Host header that is not a plain host[:port] falls back to the socket's. */
function origin(req: FastifyRequest): string {
  const host = req.host;
  const safe = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host) ? host : `${req.socket.localAddress}:${req.socket.localPort}`;
  return `${req.protocol}://${safe}`;
}
