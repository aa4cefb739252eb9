import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { FerryError } from '../errors/ferry-error.js';
import { ApiTokens } from './api-tokens.js';
import { applyCors } from './cors-origins.js';
import { crossSiteReason, WRITE_METHODS } from './cross-site-check.js';
import { sendFerryError } from './error-handler.js';
import { HostAllowList } from './host-allow-list.js';

/** Where bull-board lives: a browser navigates there, so HTTP Basic (token as password) is accepted too. */
export const BASIC_AUTH_PREFIX = '/admin/queues';

export interface RequestGuardOptions {
  /** Full-access tokens (`api_tokens`, FERRY_API_TOKEN). None and no read tokens: no token is asked for. */
  tokens: string[];
  /** GET/HEAD-only tokens (`api_read_tokens`). */
  readTokens: string[];
  /** The address the API listens on (`host`/HOST). */
  bindHost: string;
  allowedHosts: string[];
  corsOrigins: string[];
}

/** Loopback-only, no tokens: what tests and `buildApp` callers without a config get. */
export const LOOPBACK_GUARD: RequestGuardOptions = { tokens: [], readTokens: [], bindHost: '127.0.0.1', allowedHosts: [], corsOrigins: [] };

declare module 'fastify' {
  interface FastifyContextConfig {
    /** `config: { public: true }` on a route: no token needed (Host checks still apply). */
    public?: boolean;
  }
}

/**
 * The HTTP trust boundary, run on every request before routing's handlers: Host allow-list,
 * then CORS preflights, then the token (routes with `config: { public: true }` skip it), then
 * the cross-site refusal of state-changing requests. Refusals are typed JSON errors sent
 * here directly, so encapsulated plugins with error handlers of their own (bull-board) get
 * the same answers.
 */
export const requestGuard = fp(async (app: FastifyInstance, opts: RequestGuardOptions) => {
  const hosts = new HostAllowList({ bindHost: opts.bindHost, allowedHosts: opts.allowedHosts });
  const tokens = new ApiTokens({ write: opts.tokens, read: opts.readTokens });
  const corsOrigins = new Set(opts.corsOrigins.map((o) => o.toLowerCase()));

  app.addHook('onRequest', async (request, reply) => {
    const refusal = refuse(request, reply);
    if (refusal === 'answered') return reply;
    if (refusal) return sendFerryError(reply, refusal);
  });

  function refuse(request: FastifyRequest, reply: FastifyReply): FerryError | 'answered' | undefined {
    const host = request.headers.host;
    if (!hosts.allows(host)) {
      return new FerryError('auth.bad_host', `this server does not answer for Host ${JSON.stringify((host ?? '').slice(0, 200))}`, {
        hint: 'add the name to allowed_hosts in config.toml (or FERRY_ALLOWED_HOSTS)',
      });
    }
    if (applyCors(request, reply, corsOrigins)) return 'answered';
    if (tokens.enabled && request.routeOptions.config?.public !== true) {
      const basic = request.url.startsWith(BASIC_AUTH_PREFIX);
      const presented = presentedToken(request.headers.authorization, basic);
      if (presented === undefined) {
        if (basic) reply.header('www-authenticate', 'Basic realm="ferry", charset="UTF-8"');
        return new FerryError('auth.required', 'this route needs a token: send Authorization: Bearer <token>', {
          hint: 'set FERRY_API_TOKEN for the CLI, or pass -H "Authorization: Bearer $FERRY_API_TOKEN" to curl',
        });
      }
      const access = tokens.check(presented);
      if (!access) return new FerryError('auth.invalid', 'the token is not valid for this server');
      if (access === 'read' && request.method !== 'GET' && request.method !== 'HEAD') {
        return new FerryError('auth.read_only', `a read-only token may not ${request.method}`, { hint: 'use a token from api_tokens for changes' });
      }
    }
    if (WRITE_METHODS.has(request.method)) {
      const why = crossSiteReason(request, hosts, corsOrigins);
      if (why) return new FerryError('auth.cross_site', `refused a cross-site ${request.method}: ${why}`, { hint: 'add the page\'s origin to cors_origins if it is yours' });
    }
    return undefined;
  }
});

/** The token of `Bearer <token>`, or (where `basic`) of `Basic base64(user:token)`. */
function presentedToken(header: string | undefined, basic: boolean): string | undefined {
  if (!header) return undefined;
  const bearer = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const b = basic ? /^Basic[ ]+([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!b) return undefined;
  const decoded = Buffer.from(b[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1) || undefined;
}
