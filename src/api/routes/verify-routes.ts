import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppServices } from '../app-services.js';
import { errorResponses, ModelIdParams } from '../schemas.js';

type IdParams = { Params: { id: string } };
const NullableString = Type.Union([Type.String(), Type.Null()]);
const NullableNumber = Type.Union([Type.Number(), Type.Null()]);

const CorruptSchema = Type.Object({ expected: Type.String(), found: Type.String(), file: Type.String(), at: Type.String() });

export const VerifyStatusSchema = Type.Object({
  id: Type.String(),
  model_id: Type.String(),
  state: Type.Union(['queued', 'running', 'ok', 'corrupt', 'missing', 'not_verifiable', 'failed'].map((s) => Type.Literal(s))),
  bytes_total: Type.Number(),
  bytes_done: Type.Number(),
  files: Type.Array(Type.Object({ path: Type.String(), expected: NullableString, found: Type.Optional(Type.String()), ok: Type.Union([Type.Boolean(), Type.Null()]) })),
  verified_at: NullableString,
  corrupt: Type.Union([CorruptSchema, Type.Null()]),
  reason: NullableString,
  error: NullableString,
  started_at: NullableNumber,
  finished_at: NullableNumber,
});

const VerifyStartedSchema = Type.Object({
  id: Type.String(),
  model_id: Type.String(),
  state: Type.String(),
  status_url: Type.String(),
  resumed: Type.Optional(Type.Boolean()),
});

/** Re-hashing a model's files on a worker: start (202) and status (from Redis). */
export async function verifyRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.post<IdParams>('/api/models/:id/verify', { schema: { params: ModelIdParams, response: { 202: VerifyStartedSchema, ...errorResponses } } }, async (req, reply) =>
    reply.code(202).send(await services.verify.start(req.params.id)),
  );

  app.get<IdParams>('/api/models/:id/verify/status', { schema: { params: ModelIdParams, response: { 200: VerifyStatusSchema, ...errorResponses } } }, async (req) =>
    services.verify.status(req.params.id),
  );
}
