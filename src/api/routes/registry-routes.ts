import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Readable } from 'node:stream';
import { FerryError } from '../../errors/ferry-error.js';
import type { AppServices } from '../app-services.js';
import { errorResponses } from '../schemas.js';

/** The archive media types the import route takes as a raw stream; anything else is 415 before a byte is read. */
export const ARCHIVE_CONTENT_TYPES = ['application/octet-stream', 'application/gzip', 'application/x-xz'];

const RegistrySchema = Type.Object({
  name: Type.String(),
  url: Type.String(),
  kind: Type.Union([Type.Literal('file'), Type.Literal('nfs')]),
  root: Type.String(),
});

const BentoModelSchema = Type.Object(
  {
    registry: Type.String(),
    tag: Type.String(),
    name: Type.String(),
    version: Type.String(),
    path: Type.String(),
    creation_time: Type.Optional(Type.String()),
    info: Type.Record(Type.String(), Type.Unknown()),
    error: Type.Optional(Type.String()),
  },
  { additionalProperties: false },
);

const RegistryParams = Type.Object({ name: Type.String({ maxLength: 63 }) });
const ModelParams = Type.Object({ registry: Type.String({ maxLength: 63 }), name: Type.String({ maxLength: 63 }), version: Type.String({ maxLength: 63 }) });
type ModelParamsT = { registry: string; name: string; version: string };

/** File registries (BentoML layout): list, import and export `.bentomodel` archives, delete versions. */
export async function registryRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  const archiveMaxBytes = services.bento.limits.maxBytes;
  // Hand the request stream through untouched: an archive may be hundreds of GB and is never buffered.
  // Registered in this plugin's scope only, so other routes keep refusing these types.
  app.addContentTypeParser(ARCHIVE_CONTENT_TYPES, (_req, payload, done) => done(null, payload));

  app.get('/api/registries', { schema: { response: { 200: Type.Object({ registries: Type.Array(RegistrySchema) }), ...errorResponses } } }, async () => ({
    registries: services.bento.listRegistries(),
  }));

  app.get<{ Params: { name: string } }>(
    '/api/registries/:name/models',
    { schema: { params: RegistryParams, response: { 200: Type.Object({ models: Type.Array(BentoModelSchema) }), ...errorResponses } } },
    async (req) => ({ models: await services.bento.listModels(services.bento.pickRegistry(req.params.name)) }),
  );

  app.post<{ Params: { name: string } }>(
    '/api/registries/:name/import',
    {
      bodyLimit: archiveMaxBytes,
      // Before any body parser runs: a JSON or text body here would be buffered whole by fastify.
      onRequest: async (req, reply) => {
        reply.header('connection', 'close'); // a refusal comes before the upload is done; closing stops the rest of it
        const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
        if (!ARCHIVE_CONTENT_TYPES.includes(type)) {
          throw new FerryError('request.unsupported_media_type', `an archive upload must be ${ARCHIVE_CONTENT_TYPES.join(', ')}; got ${JSON.stringify(type.slice(0, 100) || '(none)')}`);
        }
      },
      schema: { params: RegistryParams, response: { 201: BentoModelSchema, ...errorResponses } },
    },
    async (req, reply) => {
      const length = req.headers['content-length'] === undefined ? undefined : Number(req.headers['content-length']);
      const model = await services.bento.importUpload(req.params.name, req.body as Readable, { declaredBytes: length });
      return reply.code(201).send(model);
    },
  );

  app.get<{ Params: ModelParamsT; Querystring: { compression?: 'gzip' | 'xz' } }>(
    '/api/registries/:registry/models/:name/:version/export',
    {
      schema: {
        params: ModelParams,
        querystring: Type.Object({ compression: Type.Optional(Type.Union([Type.Literal('gzip'), Type.Literal('xz')])) }, { additionalProperties: false }),
        // 200 is a binary stream; only the error statuses have a JSON shape.
        response: errorResponses,
      },
    },
    async (req, reply) => {
      const { registry, name, version } = req.params;
      const { fileName, stream } = await services.bento.exportArchive(registry, name, version, req.query.compression ?? 'gzip');
      return reply
        .header('content-type', req.query.compression === 'xz' ? 'application/x-xz' : 'application/gzip')
        .header('content-disposition', `attachment; filename="${fileName}"`)
        .send(stream);
    },
  );

  app.get<{ Params: ModelParamsT }>(
    '/api/registries/:registry/models/:name/:version',
    { schema: { params: ModelParams, response: { 200: BentoModelSchema, ...errorResponses } } },
    async (req) => services.bento.getModel(req.params.registry, req.params.name, req.params.version),
  );

  app.delete<{ Params: ModelParamsT }>(
    '/api/registries/:registry/models/:name/:version',
    { schema: { params: ModelParams, response: { 200: Type.Object({ deleted: Type.String() }), ...errorResponses } } },
    async (req) => {
      const { registry, name, version } = req.params;
      await services.bento.deleteModel(registry, name, version);
      return { deleted: `${registry}/${name}:${version}` };
    },
  );
}
