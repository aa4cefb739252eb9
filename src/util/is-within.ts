import { isAbsolute, relative, sep } from 'node:path';

/** `path` is strictly inside `root` (not `root` itself); both resolved, or both real paths. */
export function isWithin(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && !rel.split(sep).includes('..');
}
