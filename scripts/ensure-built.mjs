#!/usr/bin/env node
// `npm start` / `npm run worker`: rebuild dist/ only when a source is newer than the last build.
// A walk of the source folders' mtimes costs a few milliseconds; tsc costs seconds even when
// nothing changed, which is why start no longer runs it every time.
import { spawnSync } from 'node:child_process';
import { existsSync as exists, readdirSync, rmSync, statSync, utimesSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', 'tsconfig.tsbuildinfo');
const inputs = ['src', 'workers', 'bench', 'test/support', 'test/fixtures', 'tsconfig.json', 'package.json'];

function newestMtime(path) {
  let st;
  try {
    st = statSync(path);
  } catch {
    return 0;
  }
  if (!st.isDirectory()) return /\.(ts|json)$/.test(path) ? st.mtimeMs : 0;
  let newest = st.mtimeMs; // a deleted or renamed file changes its directory's mtime
  for (const name of readdirSync(path)) newest = Math.max(newest, newestMtime(join(path, name)));
  return newest;
}

function builtAt() {
  try {
    return statSync(stamp).mtimeMs;
  } catch {
    return -1;
  }
}

// tsc's incremental mode trusts its build info and never re-emits an output deleted by hand.
const entryPoints = ['dist/src/cli/main.js', 'dist/workers/pull.js'];
if (entryPoints.some((p) => !exists(join(root, p)))) rmSync(stamp, { force: true });
const built = builtAt();
const changed = Math.max(...inputs.map((p) => newestMtime(join(root, p))));
if (built < 0 || changed > built) {
  process.stderr.write(built < 0 ? 'ferry: building dist/ (first run)\n' : 'ferry: sources changed; rebuilding dist/ (incremental)\n');
  const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
  const result = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
  // tsc leaves its build info alone when only mtimes moved (a checkout): mark the build current.
  const now = new Date();
  utimesSync(stamp, now, now);
}
