import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';

type GetContext = () => Promise<FerryContext>;

/** Long-running processes: `ferry serve` (API + one in-process worker) and `ferry worker`. */
export function registerServeCommands(program: Command, getContext: GetContext): void {
  program
    .command('serve')
    .description('serve the HTTP API with one worker in the same process')
    .option('--no-worker', 'API only; run workers separately with `ferry worker`')
    .action(async (opts: { worker: boolean }) => {
      // Imported here, not at the top: fastify, execa and the queue cost every other command ~300 ms of start-up.
      const { runServer } = await import('../../app/run-server.js');
      await runServer(await getContext(), { withWorker: opts.worker });
    });

  program
    .command('worker')
    .description('run a worker: takes pull, verify and warm jobs from Redis')
    .action(async () => {
      const { runWorker } = await import('../../app/run-worker.js');
      await runWorker(await getContext());
    });
}
