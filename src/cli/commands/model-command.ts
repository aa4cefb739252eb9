import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import type { RegistryEntry } from '../../registry/registry-entry.js';
import { formatTable, humanBytes, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry model ...`: the registry from the command line, through the same ModelService the API uses. */
export function registerModelCommands(program: Command, getContext: GetContext): Command {
  const model = program.command('model').description('list, show, add and remove registry models');

  model
    .command('list')
    .description('list registry models')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const ctx = await getContext();
      const models = await ctx.models.list();
      if (opts.json) return printJson(models);
      if (models.length === 0) return void process.stdout.write('no models in the registry\n');
      const rows = models.map((m) => [m.id, humanBytes(m.size_bytes), (m.backends ?? []).join(','), m.sha256 ? m.sha256.slice(0, 12) : '-', m.path]);
      process.stdout.write(formatTable(['ID', 'SIZE', 'BACKENDS', 'SHA256', 'PATH'], rows));
    });

  model
    .command('show <id>')
    .description('show one registry model')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const ctx = await getContext();
      const entry = await ctx.models.get(id);
      if (opts.json) return printJson(entry);
      process.stdout.write(formatEntry(entry));
    });

  model
    .command('add <id>')
    .description('register a pre-staged weights file (hashes it once)')
    .requiredOption('--path <file>', 'the weights file')
    .option('--hf-repo <repo>', 'Hugging Face repo it came from')
    .option('--hf-file <file>', 'file name in that repo')
    .option('--copy', 'copy a file from outside the model root into the pull root')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { path: string; hfRepo?: string; hfFile?: string; copy?: boolean; json?: boolean }) => {
      const ctx = await getContext();
      const tty = process.stderr.isTTY && !opts.json;
      const entry = await ctx.models.add({
        id,
        path: opts.path,
        copy: opts.copy,
        hf_repo: opts.hfRepo,
        hf_filename: opts.hfFile,
        onProgress: tty ? throttledProgress() : undefined,
      });
      if (tty) process.stderr.write('\n');
      if (opts.json) return printJson(entry);
      process.stdout.write(`added ${entry.id} (${humanBytes(entry.size_bytes)}, sha256 ${entry.sha256})\n`);
    });

  model
    .command('rm <id>')
    .description('remove a model and the weights it owns')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { json?: boolean }) => {
      const ctx = await getContext();
      const { removed, deletedFiles } = await ctx.models.remove(id);
      if (opts.json) return printJson({ removed: removed.id, deleted_files: deletedFiles });
      process.stdout.write(`removed ${removed.id}${deletedFiles.length ? `; deleted ${deletedFiles.join(', ')}` : ''}\n`);
    });

  return model;
}

function formatEntry(e: RegistryEntry): string {
  const lines: string[] = [];
  for (const [key, value] of Object.entries(e)) {
    if (value === undefined) continue;
    const shown = typeof value === 'object' && !(value instanceof Date) ? JSON.stringify(value) : String(value);
    lines.push(`${key.padEnd(14)}${key === 'size_bytes' ? `${shown} (${humanBytes(Number(value))})` : shown}`);
  }
  return lines.join('\n') + '\n';
}

function throttledProgress(): (bytes: number) => void {
  let last = 0;
  return (bytes) => {
    const now = Date.now();
    if (now - last < 200) return;
    last = now;
    process.stderr.write(`\rhashing ${humanBytes(bytes)}   `);
  };
}
