import { FerryError } from '../errors/ferry-error.js';
import type { HubErrorCode } from './mirror-types.js';

/** Which Hub X-Error-Code each mirror error carries, so Hub clients react as they do to the Hub. */
const HUB_CODES: Partial<Record<string, HubErrorCode>> = {
  'mirror.repo_not_found': 'RepoNotFound',
  'mirror.out_of_scope': 'RepoNotFound',
  'mirror.revision_not_found': 'RevisionNotFound',
  'mirror.entry_not_found': 'EntryNotFound',
  'mirror.gated': 'GatedRepo',
};

export function mirrorError(code: ConstructorParameters<typeof FerryError>[0], message: string, details: Record<string, unknown> = {}): FerryError {
  return new FerryError(code, message, { details });
}

/**
 * The Hub's headers for a mirror error: X-Error-Code/X-Error-Message (what the Hub clients
 * read), X-Repo-Commit on EntryNotFound (lets them cache "no such file"), Content-Range on 416.
 */
export function hubErrorHeaders(err: FerryError): Record<string, string> {
  if (!err.code.startsWith('mirror.')) return {};
  const headers: Record<string, string> = {};
  const hubCode = HUB_CODES[err.code];
  if (hubCode) {
    headers['x-error-code'] = hubCode;
    headers['x-error-message'] = err.message.replace(/[^\x20-\x7e]/g, '?').slice(0, 300);
  }
  const commit = err.details?.repo_commit;
  if (typeof commit === 'string') headers['x-repo-commit'] = commit;
  const size = err.details?.size;
  if (err.code === 'mirror.range_not_satisfiable' && typeof size === 'number') headers['content-range'] = `bytes */${size}`;
  return headers;
}
