import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { FerryError } from '../errors/ferry-error.js';
import { sendFerryError } from './error-handler.js';

export const DASHBOARD_PATH = '/admin/queues';

/**
 * bull-board actions that write job data. They are always refused: bull-board would queue any
 * data (a `model_id` of ".." wrote into the model root), and the API's pull, verify and slot
 * routes are the validated way to add work.
 */
const JOB_DATA_ACTIONS = /\/api\/queues\/[^/]+\/(add|[^/]+\/update-data)$/;

/**
 * bull-board for the pull, verify and warm queues, behind the API's token (request-guard.ts
 * accepts HTTP Basic with the token as password under this path, since a browser cannot send a
 * Bearer header when it navigates). Read-only unless `dashboard_writable = true`: then retry,
 * promote, clean, obliterate, pause, resume and remove run; adding jobs or editing their data never does.
 */
export async function registerQueueDashboard(app: FastifyInstance, queues: Queue[], opts: { writable?: boolean } = {}): Promise<void> {
  const writable = opts.writable === true;
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: !writable })), serverAdapter });
  await app.register(
    async (scope) => {
      // Runs before bull-board's handlers for every route the board registers in this scope.
      scope.addHook('onRequest', async (request, reply) => {
        if (request.method === 'GET' || request.method === 'HEAD') return;
        const path = request.url.split('?')[0];
        if (JOB_DATA_ACTIONS.test(path)) {
          return sendFerryError(reply, new FerryError('dashboard.action_disabled', 'adding jobs or editing job data from the dashboard is disabled', { hint: 'use the API (POST /api/models/<id>/pull, /verify, /api/slots/<name>/assign)' }));
        }
        if (!writable) {
          return sendFerryError(reply, new FerryError('dashboard.read_only', 'the queue dashboard is read-only', { hint: 'set dashboard_writable = true in config.toml to allow retry, clean, pause and the like' }));
        }
      });
      await scope.register(serverAdapter.registerPlugin() as never);
    },
    { prefix: DASHBOARD_PATH },
  );
}
