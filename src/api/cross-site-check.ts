import type { FastifyRequest } from 'fastify';
import type { HostAllowList } from './host-allow-list.js';

/** Methods that change something; a browser may send them cross-site without a preflight (POST) or after one. */
export const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/**
 * Why a state-changing request looks cross-site, or undefined when it does not. A plain
 * `fetch(url, {method: 'POST', mode: 'no-cors'})` from any page needs no preflight, so the
 * browser's own headers decide: `Sec-Fetch-Site: cross-site`, or an `Origin` that is neither
 * an allowed host nor a `cors_origins` entry. curl and the CLI send neither header.
 */
export function crossSiteReason(request: FastifyRequest, hosts: HostAllowList, corsOrigins: ReadonlySet<string>): string | undefined {
  if (request.headers['sec-fetch-site'] === 'cross-site') return 'Sec-Fetch-Site is cross-site';
  const origin = request.headers.origin;
  if (origin === undefined) return undefined;
  if (corsOrigins.has(origin.toLowerCase())) return undefined;
  const host = originHost(origin);
  if (host !== undefined && hosts.allows(host)) return undefined;
  return `Origin ${JSON.stringify(origin.slice(0, 200))} is not one of this server's`;
}

/** `http://name:port` -> `name:port`; undefined for `null` and anything that is not an http(s) origin. */
function originHost(origin: string): string | undefined {
  const m = /^https?:\/\/([^/?#]+)$/i.exec(origin);
  return m?.[1];
}
