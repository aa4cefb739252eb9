/**
 * The one catalogue of Ferry's error codes and the HTTP status each maps to.
 * Stores, sources and services throw FerryError with one of these codes and know
 * nothing of HTTP; the API's error handler is the only place that reads `status`.
 */
export const ERROR_CODES = {
  'model.invalid_id': 400,
  'model.not_found': 404,
  'model.exists': 409,
  /** Another row already names the path a pull would install to (two rows never share a file). */
  'model.path_conflict': 409,
  /** The id's row came from other coordinates (repo, files, pinned revision); pull elsewhere or send replace: true. */
  'model.source_conflict': 409,
  'model.in_use': 409,
  'model.invalid_path': 400,
  'model.invalid_source': 422,
  'model.insufficient_disk': 507,
  'model.pull_job_not_found': 404,
  'model.verify_job_not_found': 404,
  'model.corrupt': 409,
  'model.files_missing': 409,
  'registry.corrupt': 500,
  'registry.locked': 503,
  'registry.io': 500,
  'config.invalid': 500,
  'request.invalid': 400,
  'request.too_large': 413,
  'request.unsupported_media_type': 415,
  'auth.required': 401,
  'auth.invalid': 403,
  'auth.read_only': 403,
  'auth.bad_host': 421,
  'auth.cross_site': 403,
  'dashboard.read_only': 403,
  'dashboard.action_disabled': 403,
  'route.not_found': 404,
  'redis.unavailable': 503,
  'source.not_found': 404,
  'source.gated': 403,
  'source.unauthorized': 401,
  'source.rate_limited': 429,
  'source.unavailable': 502,
  'source.bad_response': 502,
  /** A listing named a path that is absolute, climbs out with `..`, or holds NUL/backslash: refused, nothing written. */
  'source.bad_listing': 502,
  'source.flm_unavailable': 503,
  'source.flm_failed': 502,
  'pull.checksum_mismatch': 502,
  'pull.size_mismatch': 502,
  'pull.cancelled': 409,
  /** The id is already being pulled with other coordinates; details name the running job's. */
  'pull.conflict': 409,
  /** Another runner holds the partial file's lock; the job is given back and retried (never written twice). */
  'pull.part_busy': 503,
  /** This worker lost the job (lock token no longer current, job gone) or its part lock: it stopped and changed nothing. */
  'pull.lost_ownership': 409,
  'pull.disk_full': 507,
  'pull.failed': 500,
  'slot.not_found': 404,
  'slot.invalid': 400,
  'slot.invalid_transition': 409,
  'slot.unservable': 422,
  'slot.backend_failed': 502,
  'bento.invalid_name': 400,
  'bento.not_found': 404,
  'bento.exists': 409,
  'bento.invalid_source': 400,
  'bento.unsafe_archive': 400,
  'bento.archive_too_large': 413,
  'bento.checksum_mismatch': 422,
  'bento.invalid_archive': 422,
  'bento.corrupt': 500,
  'registry.import_invalid': 422,
  'registry.not_found': 404,
  'registry.mount_failed': 502,
  'dashboard.not_built': 503,
  'mirror.invalid_request': 400,
  'mirror.repo_not_found': 404,
  'mirror.revision_not_found': 404,
  'mirror.entry_not_found': 404,
  'mirror.gated': 401,
  'mirror.out_of_scope': 404,
  'mirror.not_cached': 504,
  'mirror.range_not_satisfiable': 416,
  'mirror.upstream_unavailable': 502,
  'mirror.too_many_streams': 429,
  'file.not_found': 404,
  'file.access_denied': 403,
  'server.port_in_use': 500,
  'internal': 500,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function statusForCode(code: string): number {
  return (ERROR_CODES as Record<string, number>)[code] ?? 500;
}
