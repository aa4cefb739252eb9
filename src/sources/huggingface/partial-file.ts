import { createHash } from 'node:crypto';
import { join } from 'node:path';

/**
 * Where a pull keeps the partial file of one repo file for one id:
 * `<pull_root>/.tmp/<id>--<path>.part`, both URL-encoded so the name is one path segment and
 * no two (id, path) pairs share it (`x:y` and `x-y` used to). Over-long names end in a digest
 * instead. Beside it: `<part>.json` (the resume record), `<part>.lock` (the flock) and
 * `<part>.owner` (the owner record with its heartbeat); see acquirePartLock.
 */
export function partialPathFor(pullRoot: string, modelId: string, repoPath: string): string {
  let name = `${encodeURIComponent(modelId)}--${encodeURIComponent(repoPath)}`;
  if (name.length > 180) name = `${name.slice(0, 100)}~${createHash('sha256').update(`${modelId}\0${repoPath}`).digest('hex').slice(0, 32)}`;
  return join(pullRoot, '.tmp', `${name}.part`);
}
