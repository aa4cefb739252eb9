import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';

/** Per-route body limits: a route that declares its own `bodyLimit` (the archive import) keeps it. */
export const BODY_LIMITS = {
  /** A JSON body with a schema (pull coordinates, a metadata patch, a slot's model). */
  json: 16 * 1024,
  /** Routes that take no body (cancel, verify, delete): room for `{}` or `null`, nothing more. */
  none: 1024,
  /** bull-board's own API (its bodies are job options and names). */
  dashboard: 64 * 1024,
} as const;

/**
 * What bodies the API accepts. Fastify's default `text/plain` parser is removed, so a body of
 * any type other than JSON gets 415 `request.unsupported_media_type` before a route runs (a
 * cross-site `<form>` or no-cors fetch can only send text/plain, urlencoded or multipart).
 * Each route gets a body limit by what it takes (registered before the routes, so onRoute sees them all).
 */
export const requestBodies = fp(async (app: FastifyInstance) => {
  app.removeContentTypeParser('text/plain');
  app.addHook('onRoute', (route) => {
    if (route.bodyLimit !== undefined) return;
    if (route.url.startsWith('/admin/')) route.bodyLimit = BODY_LIMITS.dashboard;
    else route.bodyLimit = route.schema?.body ? BODY_LIMITS.json : BODY_LIMITS.none;
  });
});
