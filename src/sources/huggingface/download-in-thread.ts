import { Worker } from 'node:worker_threads';
import { FerryError } from '../../errors/ferry-error.js';
import type { ErrorCode } from '../../errors/error-codes.js';
import type { HfClientOptions } from './hf-client.js';
import { cancelled, type DownloadOptions, type DownloadResult } from './download-file.js';

/** What the thread is given (workerData): everything downloadFile needs but the callbacks and the signal. */
export type ThreadRequest = Pick<DownloadOptions, 'target' | 'partPath' | 'stallTimeoutMs' | 'maxAttempts' | 'retryBaseMs' | 'directIo'> & {
  client: HfClientOptions;
};

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  hint?: string;
  details?: Record<string, unknown>;
}

/** Thread -> caller. */
export type ThreadMessage =
  | { type: 'bytes'; bytes: number }
  | { type: 'event'; message: string }
  | { type: 'done'; result: DownloadResult }
  | { type: 'error'; error: SerializedError };

/** Caller -> thread. */
export interface AbortMessage {
  type: 'abort';
}

/** After an abort, how long the thread has to stop on its own before it is terminated. */
const ABORT_GRACE_MS = 5000;

/**
 * downloadFile on a worker thread of its own; same options, same result, same errors.
 *
 * Why: hashing a big file no longer shares the event loop that renews the job's lock and
 * answers cancel. (It was first added because node's http client allocated a buffer per read,
 * which kept V8 collecting in the worker's larger heap; reads now go straight into the write
 * buffers, and bench:pull measured the same with and without the thread.)
 */
export function downloadFileInThread(opts: DownloadOptions): Promise<DownloadResult> {
  const request: ThreadRequest = {
    client: opts.client.options,
    target: opts.target,
    partPath: opts.partPath,
    stallTimeoutMs: opts.stallTimeoutMs,
    maxAttempts: opts.maxAttempts,
    retryBaseMs: opts.retryBaseMs,
    directIo: opts.directIo,
  };
  return new Promise((resolve, reject) => {
    const worker = new Worker(threadEntry(), { workerData: request });
    let killTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const settle = (done: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(killTimer);
      opts.signal.removeEventListener('abort', onAbort);
      void worker.terminate();
      done();
    };
    const onAbort = () => {
      worker.postMessage({ type: 'abort' } satisfies AbortMessage);
      killTimer = setTimeout(() => settle(() => reject(cancelled())), ABORT_GRACE_MS);
    };
    opts.signal.addEventListener('abort', onAbort, { once: true });
    if (opts.signal.aborted) onAbort();
    worker.on('message', (m: ThreadMessage) => {
      try {
        if (m.type === 'bytes') opts.onBytes?.(m.bytes);
        else if (m.type === 'event') opts.onEvent?.(m.message);
        else if (m.type === 'done') settle(() => resolve(m.result));
        else settle(() => reject(deserializeError(m.error)));
      } catch (err) {
        settle(() => reject(err)); // a throwing callback fails the download, as it does in downloadFile
      }
    });
    worker.once('error', (err) => settle(() => reject(err)));
    worker.once('exit', (code) => settle(() => reject(new Error(`the download thread exited with code ${code}`))));
  });
}

export function serializeError(err: unknown): SerializedError {
  const e = err as Partial<FerryError> & { code?: string };
  return {
    name: e?.name ?? 'Error',
    message: e?.message ?? String(err),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
    ...(e?.hint ? { hint: e.hint } : {}),
    ...(e?.details ? { details: e.details } : {}),
  };
}

function deserializeError(e: SerializedError): Error {
  if (e.name === 'FerryError' && e.code) return new FerryError(e.code as ErrorCode, e.message, { hint: e.hint, details: e.details });
  // errno codes (ENOSPC, EACCES...) keep their code: the caller maps them.
  return Object.assign(new Error(e.message), { name: e.name, code: e.code });
}

/**
 * The thread runs compiled JavaScript. Under vitest this module is loaded from its .ts source,
 * so the entry is taken from dist/ (built by `pretest`).
 */
function threadEntry(): URL {
  const here = import.meta.url;
  const entry = new URL('./download-thread.js', here);
  return here.endsWith('.ts') ? new URL(entry.href.replace('/src/', '/dist/src/')) : entry;
}
