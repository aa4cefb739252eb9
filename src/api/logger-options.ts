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
      req(request: FastifyRequest) {
        return {
          method: request.method,
          url: redactUrlSecrets(request.url),
          host: request.host,
          remoteAddress: request.ip,
          remotePort: request.socket?.remotePort,
        };
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
