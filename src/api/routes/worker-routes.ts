import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { AppServices } from '../app-services.js';
import { errorResponses } from '../schemas.js';

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Number>>(t: T) => Type.Union([t, Type.Null()]);

const WorkerSchema = Type.Object({
  name: Type.String(),
  connected: Type.Boolean(),
  host: Nullable(Type.String()),
  pid: Nullable(Type.Number()),
  queues: Type.Array(Type.String()),
  age_s: Type.Number(),
  idle_s: Type.Number(),
  jobs: Type.Array(
    Type.Object({ queue: Type.String(), id: Type.String(), model_id: Nullable(Type.String()), slot: Nullable(Type.String()), started_at: Nullable(Type.Number()) }),
  ),
});

/** The workers connected to this Ferry's queues and what each is running (for the dashboard). */
export async function workerRoutes(app: FastifyInstance, { services }: { services: AppServices }): Promise<void> {
  app.get('/api/workers', { schema: { response: { 200: Type.Object({ count: Type.Integer(), workers: Type.Array(WorkerSchema) }), ...errorResponses } } }, async () => {
    const workers = await services.workers.list();
    return { count: workers.filter((w) => w.connected).length, workers };
  });
}
