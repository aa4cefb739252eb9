import { execa, type ResultPromise } from 'execa';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { childEnv } from './temp-home.js';

const HERE = fileURLToPath(import.meta.url);
/** The repo root, whether this runs from test/support (vitest) or dist/test/support. */
export const REPO_ROOT = HERE.includes('/dist/') ? HERE.slice(0, HERE.lastIndexOf('/dist/')) : resolve(dirname(HERE), '../..');
const WORKER = join(REPO_ROOT, 'dist/workers/pull.js');

export interface WorkerProcess {
  child: ResultPromise;
  output: () => string;
  /** Resolves once the worker says it is taking jobs. */
  ready: Promise<void>;
}

/** A real worker process (`node dist/workers/pull.js`) with the test's FERRY_HOME and prefix. */
export function spawnWorker(env: Record<string, string>): WorkerProcess {
  const child = execa('node', [WORKER], { env: childEnv(env), extendEnv: false, reject: false, all: true, buffer: false });
  let out = '';
  let onReady: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.all?.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('taking jobs')) onReady();
  });
  return { child, output: () => out, ready };
}
