import { FerryError, isErrnoException, isFerryError } from '../errors/ferry-error.js';
import { humanBytes } from '../util/human-bytes.js';

/** Left-aligned columns separated by two spaces; fast enough for 10,000 rows. */
export function formatTable(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)].join('\n') + '\n';
}

/**
 * `ferry pull list | head`: when the reader goes away, stop quietly (exit 0) instead of
 * dying on an unhandled EPIPE with a stack trace; nobody is left to read more output.
 */
export function exitQuietlyOnEpipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(0);
      throw err;
    });
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

export { humanBytes };

/**
 * One line on stderr: `ferry: <code>: <message>`, then a hint when there is something to do;
 * never a stack trace (FERRY_DEBUG=1 prints one). Node's own errors get a typed code too.
 */
export function reportError(err: unknown): number {
  const e = err as { code?: string; message?: string };
  if (e?.code?.startsWith?.('commander.')) return 2;
  const typed = isFerryError(err) ? err : fromSystemError(err);
  process.stderr.write(`ferry: ${typed.code}: ${oneLine(typed.message)}\n`);
  const hint = typed.hint ?? hintForCode(typed.code);
  if (hint) process.stderr.write(`  hint: ${hint}\n`);
  if (process.env.FERRY_DEBUG) console.error(err);
  return 1;
}

/** Errors that reach the CLI from node (a missing file, a busy port, DNS) as typed FerryErrors. */
export function fromSystemError(err: unknown): FerryError {
  if (!isErrnoException(err)) {
    return new FerryError('internal', (err as Error)?.message ?? String(err), { hint: 'run again with FERRY_DEBUG=1 for the details, and report it' });
  }
  const path = (err as { path?: string }).path;
  switch (err.code) {
    case 'ENOENT':
      return new FerryError('file.not_found', `no such file or directory: ${path ?? err.message}`, { hint: 'check the path' });
    case 'EACCES':
    case 'EPERM':
      return new FerryError('file.access_denied', `permission denied: ${path ?? err.message}`, { hint: 'check the file\'s owner and mode, or run as a user who may read it' });
    case 'EISDIR':
      return new FerryError('file.not_found', `${path ?? 'the path'} is a directory, not a file`, { hint: 'name a file' });
    case 'EADDRINUSE':
      return new FerryError('server.port_in_use', err.message, { hint: 'another process (maybe another `ferry serve`) listens there; stop it, or set PORT (or `port` in config.toml)' });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new FerryError('source.unavailable', `cannot resolve ${(err as { hostname?: string }).hostname ?? 'the host'} (${err.code})`, { hint: 'check the network and DNS, and hf_endpoint / HF_ENDPOINT' });
    default:
      return new FerryError('internal', `${err.code}: ${err.message}`, { hint: 'run again with FERRY_DEBUG=1 for the details' });
  }
}

/** A fallback hint for errors that carry none, e.g. a failed pull's code read back from its status. */
export function hintForCode(code: string): string | undefined {
  switch (code) {
    case 'redis.unavailable':
      return 'start Redis (or Ferry with `npm start`), or set REDIS_URL';
    case 'source.gated':
      return "accept the licence on the model's Hub page; the workers (not this shell) need HF_TOKEN";
    case 'source.unauthorized':
      return 'the workers need HF_TOKEN (or hf_token in config.toml) with access to the repo';
    case 'source.unavailable':
      return "check the workers' network and hf_endpoint / HF_ENDPOINT; the pull resumes when run again";
    case 'model.insufficient_disk':
    case 'pull.disk_full':
      return 'free some space, or point pull_root in config.toml at a larger disk';
    default:
      return undefined;
  }
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').trim();
}

export { FerryError };
