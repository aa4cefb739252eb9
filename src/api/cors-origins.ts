import type { FastifyReply, FastifyRequest } from 'fastify';

const ALLOWED_METHODS = 'GET, HEAD, POST, PUT, PATCH, DELETE';
const ALLOWED_HEADERS = 'authorization, content-type';

/**
 * CORS only for the origins `cors_origins` lists; with none, no CORS header is ever sent and
 * a browser keeps every other origin from reading answers. Returns true when it answered a
 * preflight (OPTIONS with Access-Control-Request-Method) from a listed origin: preflights
 * carry no Authorization, so they are answered before the token check.
 */
export function applyCors(request: FastifyRequest, reply: FastifyReply, corsOrigins: ReadonlySet<string>): boolean {
  const origin = request.headers.origin;
  if (!corsOrigins.size || origin === undefined || !corsOrigins.has(origin.toLowerCase())) return false;
  reply.header('access-control-allow-origin', origin).header('vary', 'Origin');
  if (request.method !== 'OPTIONS' || request.headers['access-control-request-method'] === undefined) return false;
  void reply
    .code(204)
    .header('access-control-allow-methods', ALLOWED_METHODS)
    .header('access-control-allow-headers', ALLOWED_HEADERS)
    .header('access-control-max-age', '600')
    .send();
  return true;
}
