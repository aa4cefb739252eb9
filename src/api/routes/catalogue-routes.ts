import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { CatalogueFilter } from '../../services/catalogue-service.js';
import type { AppServices } from '../app-services.js';
import { errorResponses } from '../schemas.js';

const CatalogueItemSchema = Type.Object({
  id: Type.String(),
  display_name: Type.String(),
  description: Type.String(),
  family: Type.String(),
  size_gb: Type.Number(),
  vram_gb_min: Type.Number(),
  license: Type.String(),
  hf_repo: Type.Optional(Type.String()),
  hf_file: Type.Optional(Type.String()),
  mmproj_file: Type.Optional(Type.String()),
  context_length: Type.Integer(),
  recommended_slot: Type.String(),
  tags: Type.Array(Type.String()),
  capability: Type.String(),
  backend: Type.String(),
  in_registry: Type.Boolean(),
});

const Query = Type.Object(
  {
    capability: Type.Optional(Type.Union([Type.Literal('chat'), Type.Literal('embed'), Type.Literal('rerank'), Type.Literal('vision')])),
    backend: Type.Optional(Type.Union([Type.Literal('llama.cpp'), Type.Literal('npu')])),
  },
  { additionalProperties: false },
);

/** The curated starting menu; suggestions, not the registry. */
export async function catalogueRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.get<{ Querystring: CatalogueFilter }>(
    '/api/catalogue',
    { schema: { querystring: Query, response: { 200: Type.Object({ models: Type.Array(CatalogueItemSchema) }), ...errorResponses } } },
    async (req) => ({ models: await services.catalogue.list(req.query) }),
  );
}
