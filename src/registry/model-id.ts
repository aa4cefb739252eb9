import { FerryError } from '../errors/ferry-error.js';

const MAX_ID_LENGTH = 128;
/** hal0's registry slugs: lowercase, no path separators, no leading dot or dash. */
const SLUG = /^[a-z0-9][a-z0-9._-]*$/;
/** FLM's `family:size` tags (qwen3:0.6b, gpt-oss:20b, whisper-v3:turbo). */
const FLM_TAG = /^[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*$/;

export function isValidModelId(id: unknown): id is string {
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_ID_LENGTH) return false;
  // '..' anywhere could turn an id into a path component that climbs out of a directory.
  if (id.includes('..')) return false;
  return SLUG.test(id) || FLM_TAG.test(id);
}

/** True when the id has FLM's tag shape; whether FLM knows it is asked of `flm list`. */
export function hasFlmTagShape(id: string): boolean {
  return FLM_TAG.test(id);
}

export function assertModelId(id: unknown): string {
  if (!isValidModelId(id)) {
    throw new FerryError('model.invalid_id', `invalid model id ${describe(id)}`, {
      hint: 'ids are lowercase slugs [a-z0-9][a-z0-9._-]* or FLM tags family:size, at most 128 characters',
    });
  }
  return id;
}

/** Quote an untrusted value for an error message without echoing control characters or megabytes. */
export function describe(value: unknown): string {
  if (typeof value !== 'string') return typeof value;
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  return shown;
}

/** hal0's rule for turning an id into a file name: anything outside [A-Za-z0-9._-] becomes '-'. */
export function idToFileName(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]+/g, '-');
}
