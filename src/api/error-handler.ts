import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import { statusForCode } from '../errors/error-codes.js';
import { FerryError, isFerryError } from '../errors/ferry-error.js';
import { hubErrorHeaders } from '../mirror/mirror-errors.js';
import { isRedisOutage, redisUnavailable } from '../queue/redis-errors.js';

export interface ErrorHandlerOptions {
  /** Named (without its password) in `redis.unavailable` answers. */
  redisUrl?: string;
}

/**
 * The one place where error codes become HTTP statuses. Fastify's own client errors
 * (bad JSON, wrong content type, body too large, schema failures) stay 4xx with
 * code `request.*`; a Redis outage is 503 `redis.unavailable`; anything else unexpected is a
 * 500 whose details go to the log only.
 */
export const errorHandler = fp(async (app: FastifyInstance, opts: ErrorHandlerOptions) => {
  app.setErrorHandler((err: FastifyError | FerryError, request: FastifyRequest, reply: FastifyReply) => {
    if (isFerryError(err)) {
      const status = statusForCode(err.code);
      if (status >= 500) request.log.error({ code: err.code, msg: err.message }, 'request failed');
      return sendFerryError(reply, err);
    }
    const status = (err as FastifyError).statusCode;
    if (status && status >= 400 && status < 500) {
      const code = status === 413 ? 'request.too_large' : status === 415 ? 'request.unsupported_media_type' : 'request.invalid';
      return reply.code(status).send({ error: { code, message: clientMessage(err as FastifyError) } });
    }
    if (isRedisOutage(err)) {
      const outage = redisUnavailable(err, opts.redisUrl);
      request.log.warn({ code: outage.code, msg: outage.message }, 'request failed');
      return sendFerryError(reply, outage);
    }
    request.log.error({ err }, 'unexpected error');
    return reply.code(500).send({ error: { code: 'internal', message: 'internal error; see the server log' } });
  });

  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: { code: 'route.not_found', message: `no route ${request.method} ${request.url.split('?')[0].slice(0, 200)}` } });
  });
});

/** A FerryError as its status and JSON body; also used by hooks that answer before any route runs. */
export function sendFerryError(reply: FastifyReply, err: FerryError): FastifyReply {
  return reply
    .headers(hubErrorHeaders(err)) // the Hub's X-Error-Code on /hub errors; nothing elsewhere
    .code(statusForCode(err.code))
    .send({ error: { code: err.code, message: err.message, ...(err.hint ? { hint: err.hint } : {}), ...(err.details ? { details: err.details } : {}) } });
}

function clientMessage(err: FastifyError): string {
  // For a union (a body that may also be null) ajv reports every branch; the deepest issue is
  // the one about what the client actually sent.
  const first = err.validation?.reduce((a, b) => (b.instancePath.length > a.instancePath.length ? b : a));
  if (!first) return err.message;
  return `invalid request: ${fieldOf(err.validationContext ?? 'request', first)}: ${problemOf(first)}`;
}

type ValidationIssue = NonNullable<FastifyError['validation']>[number];

/**
 * The field a schema failure is about, as `body.files.2.name`: for a missing or an unknown
 * property that is the property itself, which ajv keeps in `params`, not in the path.
 */
function fieldOf(context: string, issue: ValidationIssue): string {
  const params = issue.params as { missingProperty?: string; additionalProperty?: string };
  const path = issue.instancePath.split('/').filter(Boolean);
  const leaf = params.missingProperty ?? params.additionalProperty;
  return [context, ...path, ...(leaf ? [leaf] : [])].join('.');
}

function problemOf(issue: ValidationIssue): string {
  if (issue.keyword === 'required') return 'is required';
  if (issue.keyword === 'additionalProperties') return 'is not a known field';
  return issue.message ?? 'is invalid';
}
