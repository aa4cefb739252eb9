import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppServices } from '../app-services.js';
import { errorResponses } from '../schemas.js';

const OpenAIModel = Type.Object({
  id: Type.String(),
  object: Type.Literal('model'),
  created: Type.Integer(),
  owned_by: Type.String(),
  /** Set on a slot's row (its id is the slot name): the registry id loaded in it. */
  model_id: Type.Optional(Type.Union([Type.String(), Type.Null()])),
});

/** `/v1/models` in OpenAI's shape, so OpenAI clients can enumerate what this box serves. */
export async function openaiRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.get(
    '/v1/models',
    { schema: { response: { 200: Type.Object({ object: Type.Literal('list'), data: Type.Array(OpenAIModel) }), ...errorResponses } } },
    async () => ({ object: 'list' as const, data: await services.models.listOpenAI() }),
  );
  // A wildcard: the ids of file-registry models (`local/qwen:latest`) contain a slash.
  app.get<{ Params: { '*': string } }>(
    '/v1/models/*',
    { schema: { params: Type.Object({ '*': Type.String({ minLength: 1, maxLength: 512 }) }), response: { 200: OpenAIModel, ...errorResponses } } },
    async (req) => services.models.getOpenAI(req.params['*']),
  );
}
