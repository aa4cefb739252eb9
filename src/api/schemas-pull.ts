import { Type } from '@sinclair/typebox';

const Nullable = <T extends ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

export const PullFileSchema = Type.Object({
  hf_filename: Type.String(),
  kind: Type.String(),
  dest: Type.Optional(Type.String()),
  bytes_total: Type.Number(),
  bytes_done: Type.Number(),
  sha256: Type.Optional(Type.String()),
  expected_sha256: Type.Optional(Type.String()),
  verified_by: Type.Optional(Type.String()),
});

/** hal0's job JSON plus throughput, elapsed and ETA. */
export const PullStatusSchema = Type.Object({
  id: Type.String(),
  model_id: Type.String(),
  state: Type.Union(['queued', 'running', 'verifying', 'completed', 'failed', 'cancelled'].map((s) => Type.Literal(s))),
  source: Type.String(),
  hf_repo: Type.Optional(Type.String()),
  hf_file: Type.Optional(Type.String()),
  revision: Type.Optional(Type.String()),
  bytes_total: Type.Number(),
  bytes_downloaded: Type.Number(),
  throughput_bps: Type.Number(),
  elapsed_s: Type.Number(),
  eta_s: Nullable(Type.Number()),
  started_at: Nullable(Type.Number()),
  finished_at: Nullable(Type.Number()),
  error: Type.Union([Type.String(), Type.Null()]),
  error_code: Type.Union([Type.String(), Type.Null()]),
  sha256: Type.Union([Type.String(), Type.Null()]),
  path: Type.Union([Type.String(), Type.Null()]),
  files: Type.Array(PullFileSchema),
  attempts: Type.Number(),
  connections: Type.Number(),
});

export const PullStartedSchema = Type.Object({
  id: Type.Union([Type.String(), Type.Null()]),
  model_id: Type.String(),
  state: Type.String(),
  source: Type.String(),
  hf_repo: Type.Optional(Type.String()),
  hf_file: Type.Optional(Type.String()),
  status_url: Type.String(),
  resumed: Type.Optional(Type.Boolean()),
  derived_from: Type.Optional(Type.String()),
});

/** `hf_file`: a name, a list of names, or a glob. No other keys: a typo should not be ignored. */
export const PullBodySchema = Type.Union([
  Type.Null(),
  Type.Object(
    {
      hf_repo: Type.Optional(Type.String({ maxLength: 200 })),
      hf_file: Type.Optional(Type.Union([Type.String({ maxLength: 512 }), Type.Array(Type.String({ maxLength: 512 }), { maxItems: 64 })])),
      revision: Type.Optional(Type.String({ maxLength: 200 })),
      sha256: Type.Optional(Type.String({ maxLength: 64 })),
      replace: Type.Optional(Type.Boolean()),
    },
    { additionalProperties: false },
  ),
]);
