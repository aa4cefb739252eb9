import { FerryError } from '../errors/ferry-error.js';
import { describe } from '../registry/model-id.js';

/** The Hub's own rules for a repo name part: letters, digits, `-`, `_`, `.`; no `..`, no leading `.`/`-`. */
const NAME_PART = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;
const COMMIT = /^[0-9a-f]{40}$/;

export function isCommit(rev: string): boolean {
  return COMMIT.test(rev);
}

/** `org/name` from two URL segments (already percent-decoded); anything else is a 400 with nothing touched. */
export function assertHubRepo(org: string, name: string): string {
  for (const part of [org, name]) {
    if (!NAME_PART.test(part) || part.includes('..') || part.endsWith('.git')) {
      throw new FerryError('mirror.invalid_request', `invalid repo name ${describe(`${org}/${name}`)}`);
    }
  }
  return `${org}/${name}`;
}

export function assertHubRevision(rev: string): string {
  if (!REVISION.test(rev) || rev.includes('..') || rev.includes('//') || rev.endsWith('/')) {
    throw new FerryError('mirror.invalid_request', `invalid revision ${describe(rev)}`);
  }
  return rev;
}

/** A file path inside a repo: relative, `/`-separated, no `.`/`..` parts, no backslash or control characters. */
export function assertHubPath(path: string): string {
  if (
    path.length === 0 ||
    path.length > 1024 ||
    path.startsWith('/') ||
    path.includes('\\') ||
    /[\u0000-\u001f\u007f]/.test(path) ||
    path.split('/').some((part) => part === '' || part === '.' || part === '..')
  ) {
    throw new FerryError('mirror.invalid_request', `invalid file path ${describe(path)}`);
  }
  return path;
}

/** Percent-decodes one URL segment; a malformed escape is a 400, not a 500. */
export function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new FerryError('mirror.invalid_request', `malformed percent-encoding in ${describe(segment)}`);
  }
}

/**
 * Splits `{revision}/{path...}` as the Hub does: a revision comes URL-encoded as one segment
 * (`refs%2Fpr%2F1`), or `refs/pr/N` / `refs/convert/X` as three segments.
 */
export function splitRevisionAndPath(segments: string[]): { revision: string; path: string } {
  const decoded = segments.map(decodeSegment);
  const refLength = decoded[0] === 'refs' && (decoded[1] === 'pr' || decoded[1] === 'convert') ? 3 : 1;
  return { revision: assertHubRevision(decoded.slice(0, refLength).join('/')), path: decoded.slice(refLength).join('/') };
}
