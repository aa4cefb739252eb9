import type { FastifyRequest } from 'fastify';

/**
 * THE logger options of the API (fastify's pino): the one place to change the log format.
 * Secrets never reach the log: `authorization`, `cookie` and `proxy-authorization` headers are
 * censored wherever a request's headers are logged, and a URL's password or token-like query
 * values are replaced before the URL is logged.
 */
export function apiLoggerOptions(opts: { level?: string } = {}): Record<string, unknown> {
  return {
    level: opts.level ?? 'info',
    redact: {
      paths: [
        'req.headers.authorization',
        'req.headers.cookie',
        'req.headers["proxy-authorization"]',
        'headers.authorization',
        'headers.cookie',
        'headers["proxy-authorization"]',
        'res.headers["set-cookie"]',
      ],
      censor: '[redacted]',
    },
    serializers: {
      // Fastify's own request fields, with the URL's secrets replaced; a plain object logged as `req` keeps its keys.
      req(request: FastifyRequest | Record<string, unknown>) {
        if (typeof (request as FastifyRequest).method !== 'string' || !('raw' in request)) {
          const plain = request as Record<string, unknown>;
          return typeof plain.url === 'string' ? { ...plain, url: redactUrlSecrets(plain.url) } : plain;
        }
        const r = request as FastifyRequest;
        return { method: r.method, url: redactUrlSecrets(r.url ?? ''), host: r.host, remoteAddress: r.ip, remotePort: r.socket?.remotePort };
      },
    },
  };
}

/** Query parameters whose values are secrets wherever they appear. */
const SECRET_PARAMS = /^(token|access_token|api_key|apikey|key|password|passwd|secret|sig|signature|auth|authorization|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

/** `//user:pass@host` -> `//***@host`; `?token=abc&x=1` -> `?token=[redacted]&x=1`. */
export function redactUrlSecrets(url: string): string {
  let out = url.replace(/\/\/[^@/?#]*@/, '//***@');
  const q = out.indexOf('?');
  if (q < 0) return out;
  const query = out
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = decodeSafe(eq < 0 ? pair : pair.slice(0, eq));
      return eq >= 0 && SECRET_PARAMS.test(name) ? `${pair.slice(0, eq)}=[redacted]` : pair;
    })
    .join('&');
  out = `${out.slice(0, q)}?${query}`;
  return out;
}

function decodeSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}
