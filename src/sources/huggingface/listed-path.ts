import { isAbsolute, posix, resolve } from 'node:path';
import { FerryError } from '../../errors/ferry-error.js';
import { describe } from '../../registry/model-id.js';
import { isWithin } from '../../util/is-within.js';

/**
 * A file path as a listing (the Hub, a mirror, or anyone on a plain-http path between) names
 * it, checked before it is used for anything: relative, `/`-separated, no NUL, no backslash,
 * no control characters, no `.`, `..` or empty segment (before or after normalisation), no
 * leading `/`. Every path the pull writes comes from such a listing, so a path that passes
 * here can be joined under a destination directory without leaving it (see assertUnder).
 * Answers the path itself; throws `source.bad_listing` (final: retrying gets the same listing).
 */
export function assertListedPath(path: unknown, what: string): string {
  const bad = (why: string) => new FerryError('source.bad_listing', `${what}: the listing names ${describe(path)}, which ${why}; nothing was written`, {
    hint: 'the source (or something between it and Ferry) sent a hostile or broken file list',
  });
  if (typeof path !== 'string' || path.length === 0 || path.length > 1024) throw bad('is not a file name');
  if (path.includes('\0')) throw bad('contains a NUL byte');
  if (path.includes('\\')) throw bad('contains a backslash');
  if (/[\u0000-\u001f\u007f]/.test(path)) throw bad('contains control characters');
  if (path.startsWith('/') || isAbsolute(path) || /^[A-Za-z]:/.test(path)) throw bad('is absolute');
  const segments = path.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) throw bad('has an empty, "." or ".." segment');
  const normal = posix.normalize(path);
  if (normal !== path || normal.startsWith('..')) throw bad('does not normalise to itself');
  return path;
}

/** `dir/<rel>` after path.resolve, refused unless it is strictly inside `dir` (the last line of defence). */
export function assertUnder(dir: string, rel: string, what: string): string {
  const target = resolve(dir, ...rel.split('/'));
  if (!isWithin(resolve(dir), target)) {
    throw new FerryError('source.bad_listing', `${what}: ${describe(rel)} would land outside ${dir}; nothing was written`);
  }
  return target;
}
