import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppServices } from '../app-services.js';
import { errorResponses, ModelEntrySchema, ModelIdParams, ModelListResponse } from '../schemas.js';

type IdParams = { Params: { id: string } };

/** The registry over HTTP: list, show, delete, update metadata. */
export async function modelRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.get('/api/models', { schema: { response: { 200: ModelListResponse, ...errorResponses } } }, async (_req, reply) => {
    // A JSON string is sent as is: the body is serialised once per registry version (see listForApiJson).
    return reply.type('application/json; charset=utf-8').send(await services.models.listForApiJson());
  });

  app.get<IdParams>('/api/models/:id', { schema: { params: ModelIdParams, response: { 200: ModelEntrySchema, ...errorResponses } } }, async (req) => {
    return services.models.getWithSource(req.params.id);
  });

  app.delete<IdParams>(
    '/api/models/:id',
    {
      schema: {
        params: ModelIdParams,
        response: { 200: Type.Object({ removed: Type.String(), deleted_files: Type.Array(Type.String()) }), ...errorResponses },
      },
    },
    async (req) => {
      const { removed, deletedFiles } = await services.models.remove(req.params.id);
      return { removed: removed.id, deleted_files: deletedFiles };
    },
  );

  app.patch<IdParams & { Body: Record<string, unknown> }>(
    '/api/models/:id',
    {
      schema: {
        params: ModelIdParams,
        body: Type.Object(
          {
            name: Type.Optional(Type.String({ maxLength: 256 })),
            license: Type.Optional(Type.String({ maxLength: 128 })),
            quant: Type.Optional(Type.String({ maxLength: 64 })),
            backends: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 32 })),
            tags: Type.Optional(Type.Array(Type.String({ maxLength: 64 }), { maxItems: 64 })),
            capabilities: Type.Optional(Type.Array(Type.String({ maxLength: 32 }), { maxItems: 16 })),
            metadata: Type.Optional(Type.Record(Type.String({ maxLength: 128 }), Type.Unknown())),
          },
          { additionalProperties: false },
        ),
        response: { 200: ModelEntrySchema, ...errorResponses },
      },
    },
    async (req) => services.models.update(req.params.id, req.body),
  );
}
