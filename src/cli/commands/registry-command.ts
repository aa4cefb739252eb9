import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { formatTable, humanBytes, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry registry ...`: the configured file registries, and moving hal0's registry between machines. */
export function registerRegistryCommands(program: Command, getContext: GetContext): Command {
  const registry = program.command('registry').description('file registries; export and import the hal0 registry');

  registry
    .command('list')
    .description('the file registries named in config.toml')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const ctx = await getContext();
      const list = ctx.bento.listRegistries();
      if (opts.json) return printJson(list);
      if (list.length === 0) return void process.stdout.write('no registries; add [registries.<name>] url = "file:///..." to config.toml\n');
      process.stdout.write(formatTable(['NAME', 'KIND', 'URL', 'ROOT'], list.map((r) => [r.name, r.kind, r.url, r.root])));
    });

  registry
    .command('export')
    .description("write registry.toml's rows and the weights they name as one tar file")
    .requiredOption('--out <file>', 'the tar file to write')
    .option('--index-only', 'rows only, no weights')
    .option('--json', 'machine-readable output')
    .action(async (opts: { out: string; indexOnly?: boolean; json?: boolean }) => {
      const ctx = await getContext();
      const result = await ctx.registryTransfer.exportTo(resolve(opts.out), { indexOnly: opts.indexOnly });
      if (opts.json) return printJson(result);
      process.stdout.write(`exported ${result.rows} rows and ${result.files} files (${humanBytes(result.bytes)}) to ${resolve(opts.out)}\n`);
    });

  registry
    .command('import <file>')
    .description('add the rows of an export after verifying every file; existing ids are skipped')
    .option('--replace', 'replace rows whose id already exists')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { replace?: boolean; json?: boolean }) => {
      const ctx = await getContext();
      const result = await ctx.registryTransfer.importFrom(resolve(file), { replace: opts.replace });
      if (opts.json) return printJson(result);
      process.stdout.write(
        `added ${result.added.length}, replaced ${result.replaced.length}, skipped ${result.skipped.length} (existing: ${result.skipped.join(', ') || '-'}); ${result.files} files moved into place\n`,
      );
    });

  return registry;
}
