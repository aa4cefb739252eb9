import type { ErrorCode } from './error-codes.js';

export interface FerryErrorOptions {
  /** What the user can do about it, shown after the message by the CLI. */
  hint?: string;
  cause?: unknown;
  /** Extra machine-readable fields (e.g. expected/found digests). */
  details?: Record<string, unknown>;
}

/**
 * Every expected failure in Ferry. The code is stable and machine-readable; the
 * message is one line for a human. Never put secrets (tokens, signed URLs) in either.
 */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }
}

export function isFerryError(err: unknown): err is FerryError {
  return err instanceof FerryError;
}

export function isErrnoException(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string';
}
