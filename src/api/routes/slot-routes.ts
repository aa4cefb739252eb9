import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppServices } from '../app-services.js';
import { errorResponses } from '../schemas.js';

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

/** Slots over HTTP (read-only here; assign and swap arrive with the warm jobs). */
export async function slotRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.get('/api/slots', { schema: { response: { 200: Type.Object({ slots: Type.Array(SlotViewSchema) }), ...errorResponses } } }, async () => ({
    slots: await services.slots.list(),
  }));

  app.get<{ Params: { name: string } }>(
    '/api/slots/:name',
    { schema: { params: Type.Object({ name: Type.String({ maxLength: 64 }) }), response: { 200: SlotViewSchema, ...errorResponses } } },
    async (req) => services.slots.get(req.params.name),
  );
}
