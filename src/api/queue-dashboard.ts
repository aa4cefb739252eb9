import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { FerryError } from '../errors/ferry-error.js';
import { statusForCode } from '../errors/error-codes.js';
import { isRedisOutage, redisUnavailable } from '../queue/redis-errors.js';
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
export async function registerQueueDashboard(app: FastifyInstance, queues: Queue[], opts: { writable?: boolean; redisUrl?: string } = {}): Promise<void> {
  const writable = opts.writable === true;
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(DASHBOARD_PATH);
  createBullBoard({ queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: !writable })), serverAdapter });
  // bull-board answers its own errors in its own scope: a Redis outage is the API's 503 there too, and
  // nothing else leaks a message (bull-board would send error.message, and the stack in development).
  serverAdapter.setErrorHandler(((error: Error & { statusCode?: number }) => {
    const err = isRedisOutage(error) ? redisUnavailable(error, opts.redisUrl) : undefined;
    if (err) return { status: statusForCode(err.code), body: { error: { code: err.code, message: err.message, hint: err.hint } } };
    const status = error.statusCode && error.statusCode < 500 ? error.statusCode : 500;
    const code = status === 500 ? 'internal' : status === 415 ? 'request.unsupported_media_type' : status === 413 ? 'request.too_large' : 'request.invalid';
    return { status, body: { error: { code, message: status === 500 ? 'internal error; see the server log' : error.message } } };
  }) as unknown as Parameters<FastifyAdapter['setErrorHandler']>[0]);
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
