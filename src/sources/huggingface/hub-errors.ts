import { FerryError } from '../../errors/ferry-error.js';

type Headers = Record<string, string | string[] | undefined>;

/** Statuses the Hub's own clients retry with backoff; everything else is final. */
const RETRYABLE_STATUS = new Set([408, 500, 502, 503, 504]);

export class RetryableHubError extends Error {
  constructor(
    message: string,
    /** Seconds the server asked us to wait (429 Retry-After). */
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = 'RetryableHubError';
  }
}

/**
 * Turns a non-2xx Hub answer into an error. `X-Error-Code` is what tells a missing repo from a
 * gated one (the Hub answers 401 for both); none of those is worth retrying. The message names
 * the repo and file, never the URL (a CDN URL carries a signature).
 */
export function hubError(status: number, headers: Headers, what: string): Error {
  const code = header(headers, 'x-error-code');
  const serverText = header(headers, 'x-error-message');
  const said = serverText ? ` (hub: ${serverText.slice(0, 200)})` : '';
  switch (code) {
    case 'RepoNotFound':
      return new FerryError('source.not_found', `${what}: repository not found, or private and no valid HF_TOKEN${said}`, { hint: 'check the repo id; for a private repo set HF_TOKEN for the workers' });
    case 'GatedRepo':
      return new FerryError('source.gated', `${what}: the repository is gated: accept the licence on the model page and set HF_TOKEN`, { hint: 'accept the licence on the model page and set HF_TOKEN for the workers' });
    case 'EntryNotFound':
      return new FerryError('source.not_found', `${what}: file not found in the repository${said}`);
    case 'RevisionNotFound':
      return new FerryError('source.not_found', `${what}: revision not found${said}`);
    default:
  }
  if (status === 429) return new RetryableHubError(`${what}: rate limited (429)`, retryAfter(headers));
  if (RETRYABLE_STATUS.has(status)) return new RetryableHubError(`${what}: the hub answered ${status}`);
  if (status === 401) return new FerryError('source.unauthorized', `${what}: unauthorized (401): the repo is private or the token is invalid`, { hint: 'set a valid HF_TOKEN for the workers' });
  if (status === 403) return new FerryError('source.gated', `${what}: forbidden (403): accept the licence on the model page and set HF_TOKEN`);
  if (status === 404) return new FerryError('source.not_found', `${what}: not found (404)`);
  return new FerryError('source.bad_response', `${what}: unexpected answer ${status}`);
}

function retryAfter(headers: Headers): number | undefined {
  const value = header(headers, 'retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds);
  const date = Date.parse(value);
  return Number.isFinite(date) ? Math.max(0, (date - Date.now()) / 1000) : undefined;
}

export function header(headers: Headers, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}
