import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { FerryError } from '../../errors/ferry-error.js';

const HERE = fileURLToPath(import.meta.url);
const DIST_SRC = `${sep}dist${sep}src${sep}`;
/** The repo root, whether this runs from dist/src/api (node) or src/api (vitest runs the sources). */
const REPO_ROOT = HERE.includes(DIST_SRC) ? HERE.slice(0, HERE.lastIndexOf(DIST_SRC)) : resolve(dirname(HERE), '../../..');
/** Where `npm run build` (vite, config in web/vite.config.ts) writes the page. */
export const DEFAULT_WEB_ROOT = join(REPO_ROOT, 'dist', 'web');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
};

/**
 * Everything the page loads comes from this server; the JSON API is the only thing it talks to.
 * Inline scripts and styles are not needed by the build, so they are refused too.
 */
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

interface Asset {
  body: Buffer;
  gzip?: Buffer;
  type: string;
  /** Vite puts a content hash in every asset's name, so those never change; index.html may. */
  immutable: boolean;
}

/**
 * The dashboard's static shell: `/` (index.html) and `/assets/<file>`, read once from the build
 * into memory (a few files, tens of KB), gzipped once. Only names found in the build are served,
 * so no request path ever reaches the file system. Routes are `config.public`: the page must load
 * before it can ask for the API token (the token guard lets these through).
 */
export async function dashboardRoutes(app: FastifyInstance, opts: { webRoot?: string } = {}): Promise<void> {
  const assets = loadAssets(opts.webRoot ?? DEFAULT_WEB_ROOT);
  const send = (asset: Asset | undefined, req: FastifyRequest, reply: FastifyReply) => {
    if (!asset) throw new FerryError('dashboard.not_built', 'the dashboard is not built', { hint: 'run `npm run build` (vite builds web/ into dist/web)' });
    reply
      .header('content-type', asset.type)
      .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer');
    if (asset.type.startsWith('text/html')) reply.header('content-security-policy', CSP).header('x-frame-options', 'DENY');
    if (asset.gzip && /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? ''))) {
      return reply.header('content-encoding', 'gzip').header('vary', 'accept-encoding').send(asset.gzip);
    }
    return reply.send(asset.body);
  };

  app.get('/', { config: { public: true } }, async (req, reply) => send(assets.get('index.html'), req, reply));
  app.get<{ Params: { file: string } }>('/assets/:file', { config: { public: true } }, async (req, reply) => {
    const asset = assets.get(`assets/${req.params.file}`);
    if (!asset && assets.size === 0) return send(undefined, req, reply);
    if (!asset) throw new FerryError('route.not_found', `no asset ${req.params.file.slice(0, 100)}`);
    return send(asset, req, reply);
  });
}

/** Every file under the build, by its path relative to it; none when the page is not built. */
function loadAssets(root: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return; // not built
    }
    for (const name of names) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const type = TYPES[extname(name)];
      if (!type) continue;
      const body = readFileSync(path);
      const rel = relative(root, path).split(sep).join('/');
      const compressible = type.startsWith('text/') || type.startsWith('image/svg') || type.startsWith('application/json');
      assets.set(rel, { body, type, immutable: rel.startsWith('assets/'), ...(compressible && body.length > 1024 ? { gzip: gzipSync(body) } : {}) });
    }
  };
  walk(root);
  return assets;
}
