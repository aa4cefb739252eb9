import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { runServer } from '../../app/run-server.js';
import { runWorker } from '../../app/run-worker.js';

type GetContext = () => Promise<FerryContext>;

/** Long-running processes: `ferry serve` (API + one in-process worker) and `ferry worker`. */
export function registerServeCommands(program: Command, getContext: GetContext): void {
  program
    .command('serve')
    .description('serve the HTTP API with one worker in the same process')
    .option('--no-worker', 'API only; run workers separately with `ferry worker`')
    .action(async (opts: { worker: boolean }) => {
      await runServer(await getContext(), { withWorker: opts.worker });
    });

  program
    .command('worker')
    .description('run a worker: takes pull, verify and warm jobs from Redis')
    .action(async () => {
      await runWorker(await getContext());
    });
}
