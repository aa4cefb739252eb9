import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppServices } from '../app-services.js';
import { errorResponses } from '../schemas.js';
import { PullStatusSchema } from '../schemas-pull.js';

const Nullable = <T extends ReturnType<typeof Type.String>>(t: T) => Type.Union([t, Type.Null()]);

export const SlotViewSchema = Type.Object({
  name: Type.String(),
  port: Type.Integer(),
  device: Type.String(),
  backend: Nullable(Type.String()),
  model: Nullable(Type.String()),
  context_size: Type.Union([Type.Integer(), Type.Null()]),
  autoload: Type.Boolean(),
  state: Type.String(),
  model_id: Nullable(Type.String()),
  updated_at: Type.Number(),
  message: Nullable(Type.String()),
  servable: Type.Boolean(),
});

const SlotDetailSchema = Type.Intersect([SlotViewSchema, Type.Object({ pull: Type.Union([PullStatusSchema, Type.Null()]) })]);

const NameParams = Type.Object({ name: Type.String({ maxLength: 64 }) });
const ModelBody = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 512 }),
    // swap only: where to pull a model that is in neither the registry nor the catalogue.
    hf_repo: Type.Optional(Type.String({ maxLength: 256 })),
    hf_file: Type.Optional(Type.String({ maxLength: 512 })),
  },
  { additionalProperties: false },
);
const ChangeStartedSchema = Type.Object({
  slot: Type.String(),
  model: Type.String(),
  action: Type.Union([Type.Literal('warm'), Type.Literal('pull')]),
  job_id: Type.Union([Type.String(), Type.Null()]),
  state: Type.String(),
  status_url: Type.String(),
});
const UnloadStartedSchema = Type.Object({
  slot: Type.String(),
  model: Type.Union([Type.String(), Type.Null()]),
  action: Type.Literal('unload'),
  job_id: Type.String(),
  state: Type.String(),
  status_url: Type.String(),
});
type ChangeRequest = { Params: { name: string }; Body: { model: string; hf_repo?: string; hf_file?: string } };

/** Slots over HTTP: list and show, and assign/swap, whose work continues in warm (and pull, verify) jobs. */
export async function slotRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.get('/api/slots', { schema: { response: { 200: Type.Object({ slots: Type.Array(SlotViewSchema) }), ...errorResponses } } }, async () => ({
    slots: await services.slots.list(),
  }));

  app.get<{ Params: { name: string } }>(
    '/api/slots/:name',
    { schema: { params: NameParams, response: { 200: SlotDetailSchema, ...errorResponses } } },
    async (req) => services.slotControl.get(req.params.name),
  );

  app.post<ChangeRequest>(
    '/api/slots/:name/assign',
    { schema: { params: NameParams, body: ModelBody, response: { 202: ChangeStartedSchema, ...errorResponses } } },
    async (req, reply) => reply.code(202).send(await services.slotControl.assign(req.params.name, req.body.model)),
  );

  app.post<{ Params: { name: string } }>(
    '/api/slots/:name/unload',
    { schema: { params: NameParams, response: { 202: UnloadStartedSchema, ...errorResponses } } },
    async (req, reply) => reply.code(202).send(await services.slotControl.unload(req.params.name)),
  );

  app.post<ChangeRequest>(
    '/api/slots/:name/swap',
    { schema: { params: NameParams, body: ModelBody, response: { 202: ChangeStartedSchema, ...errorResponses } } },
    async (req, reply) => {
      const { model, ...source } = req.body;
      return reply.code(202).send(await services.slotControl.swap(req.params.name, model, source));
    },
  );
}
