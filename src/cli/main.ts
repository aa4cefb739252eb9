import { Command, CommanderError } from 'commander';
import { FerryContext } from '../app/create-context.js';
import { loadConfig } from '../config/load-config.js';
import { registerBentoCommands } from './commands/bento-command.js';
import { registerModelCommands } from './commands/model-command.js';
import { registerPullCommands } from './commands/pull-command.js';
import { registerRegistryCommands } from './commands/registry-command.js';
import { registerServeCommands } from './commands/serve-command.js';
import { registerSlotCommands } from './commands/slot-command.js';
import { registerCatalogueCommands } from './commands/catalogue-command.js';
import { exitQuietlyOnEpipe, reportError } from './output.js';
import { registerVerifyCommands } from './commands/verify-command.js';
import { registerSlotChangeCommands } from './commands/slot-change-command.js';
import { registerInitCommands } from './commands/init-command.js';
import { registerMirrorCommands } from './commands/mirror-command.js';
import { ferryVersion } from './version.js';

/** `ferry`: every command builds one context lazily so `--help` needs no config or Redis. */
export async function main(argv: string[]): Promise<number> {
  exitQuietlyOnEpipe();
  let ctx: FerryContext | undefined;
  const getContext = async () => (ctx ??= new FerryContext(loadConfig()));
  const program = new Command('ferry')
    .description('Ferry: the model-weights registry and pull service')
    .version(ferryVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  const model = registerModelCommands(program, getContext);
  registerCatalogueCommands(model, getContext);
  registerPullCommands(program, model, getContext);
  const slot = registerSlotCommands(program, getContext);
  registerVerifyCommands(model, getContext);
  registerSlotChangeCommands(model, slot, getContext);
  registerInitCommands(program, getContext);
  registerBentoCommands(program, getContext);
  registerRegistryCommands(program, getContext);
  registerServeCommands(program, getContext);
  registerMirrorCommands(program, getContext);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    return reportError(err);
  } finally {
    if (ctx) await ctx.close();
  }
}

const code = await main(process.argv.slice(2));
if (code !== 0 || !process.exitCode) process.exitCode = code;
