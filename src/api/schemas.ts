import { Type } from '@sinclair/typebox';

/** Shared response and parameter schemas; every route declares one per status it answers. */
export const ErrorResponse = Type.Object({
  error: Type.Object({
    code: Type.String(),
    message: Type.String(),
    hint: Type.Optional(Type.String()),
    details: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  }),
});

export const errorResponses = {
  400: ErrorResponse,
  401: ErrorResponse,
  403: ErrorResponse,
  404: ErrorResponse,
  409: ErrorResponse,
  413: ErrorResponse,
  415: ErrorResponse,
  421: ErrorResponse,
  422: ErrorResponse,
  429: ErrorResponse,
  500: ErrorResponse,
  502: ErrorResponse,
  503: ErrorResponse,
  507: ErrorResponse,
};

/** Ids are validated by the service (code model.invalid_id); the schema only bounds the size. */
export const ModelIdParams = Type.Object({ id: Type.String({ maxLength: 512 }) });

const RegistryFileSchema = Type.Object(
  { path: Type.String(), sha256: Type.Optional(Type.String()), size_bytes: Type.Optional(Type.Number()) },
  { additionalProperties: true },
);

export const ModelEntrySchema = Type.Object(
  {
    id: Type.String(),
    path: Type.String(),
    name: Type.Optional(Type.String()),
    size_bytes: Type.Optional(Type.Number()),
    sha256: Type.Optional(Type.String()),
    hf_repo: Type.Optional(Type.String()),
    hf_filename: Type.Optional(Type.String()),
    revision: Type.Optional(Type.String()),
    backends: Type.Optional(Type.Array(Type.String())),
    tags: Type.Optional(Type.Array(Type.String())),
    capabilities: Type.Optional(Type.Array(Type.String())),
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    files: Type.Optional(Type.Array(RegistryFileSchema)),
    created_at: Type.Optional(Type.String()),
    verified_at: Type.Optional(Type.String()),
    pullable: Type.Optional(Type.Boolean()),
  },
  // Keys Ferry does not know (hal0's defaults, mmproj, ...) are returned as they are.
  { additionalProperties: true },
);

export const ModelListResponse = Type.Object({ models: Type.Array(ModelEntrySchema) });
