import { mirrorError } from './mirror-errors.js';

/**
 * `[start, end)` for a single `bytes=` range (RFC 9110); undefined when absent, multi-range or
 * not understood (then the whole file is sent with 200, as servers may). Unsatisfiable: 416.
 */
export function parseByteRange(header: string | undefined, size: number): [number, number] | undefined {
  const match = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const unsatisfiable = () => mirrorError('mirror.range_not_satisfiable', `range ${header!.slice(0, 60)} is outside the file's ${size} bytes`, { size });
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) throw unsatisfiable();
    return [Math.max(0, size - suffix), size];
  }
  const start = Number(match[1]);
  if (!Number.isSafeInteger(start) || start >= size) throw unsatisfiable();
  const last = match[2] === '' ? size - 1 : Number(match[2]);
  if (!Number.isSafeInteger(last) || last < start) return undefined;
  return [start, Math.min(last, size - 1) + 1];
}

/** If-None-Match against the file's etag: `*`, or any listed etag, quotes and W/ ignored. */
export function etagMatches(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim().replace(/^W\//, '').replace(/^"|"$/g, '');
    return t === '*' || t === etag;
  });
}
