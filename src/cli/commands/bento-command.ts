import { createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { parseBentoTag } from '../../bento/bento-name.js';
import { FerryError } from '../../errors/ferry-error.js';
import { tempPathFor } from '../../stores/atomic-write.js';
import { formatTable, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry bento ...`: models in the file registries (BentoML layout), through BentoService. */
export function registerBentoCommands(program: Command, getContext: GetContext): Command {
  const bento = program.command('bento').description('list, import, export and remove models in file registries (BentoML layout)');

  bento
    .command('list')
    .description('every version, newest first')
    .option('--registry <name>', 'one registry (default: all)')
    .option('--json', 'machine-readable output')
    .action(async (opts: { registry?: string; json?: boolean }) => {
      const ctx = await getContext();
      const models = await ctx.bento.listAll(opts.registry);
      if (opts.json) return printJson(models);
      if (models.length === 0) return void process.stdout.write('no models in the file registries\n');
      const rows = models.map((m) => [m.registry, m.tag, String(m.info.module ?? '-'), String(m.info.size ?? '-'), m.creation_time ?? (m.error ? `error: ${m.error}` : '-')]);
      process.stdout.write(formatTable(['REGISTRY', 'TAG', 'MODULE', 'SIZE', 'CREATED'], rows));
    });

  bento
    .command('add <dir>')
    .description('save the files of a directory as a new version of a model (copied; latest moves to it)')
    .requiredOption('--name <name>', 'the model name')
    .option('--module <module>', "model.yaml's module: the framework that loads the files", 'ferry')
    .option('--label <key=value>', 'a label for model.yaml (repeatable)', (v: string, all: string[]) => [...all, v], [] as string[])
    .option('--registry <name>', 'target registry (default: the only one)')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, opts: { name: string; module: string; label: string[]; registry?: string; json?: boolean }) => {
      const ctx = await getContext();
      const labels = Object.fromEntries(opts.label.map(parseLabel));
      const model = await ctx.bento.addDirectory(opts.registry, { name: opts.name, sourceDir: resolve(dir), module: opts.module, labels });
      if (opts.json) return printJson(model);
      process.stdout.write(`added ${model.registry}/${model.tag} (${String(model.info.size)}) at ${model.path}\n`);
    });

  bento
    .command('import <file>')
    .description('import a .bentomodel archive (gzip or xz)')
    .option('--registry <name>', 'target registry (default: the only one)')
    .option('--json', 'machine-readable output')
    .action(async (file: string, opts: { registry?: string; json?: boolean }) => {
      const ctx = await getContext();
      // Opened first, so a missing or unreadable file is a typed error, not a stream's crash.
      const handle = await open(resolve(file), 'r');
      const source = handle.createReadStream();
      try {
        const model = await ctx.bento.importArchive(opts.registry, source);
        if (opts.json) return printJson(model);
        process.stdout.write(`imported ${model.registry}/${model.tag} into ${model.path}\n`);
      } finally {
        source.destroy();
        await handle.close().catch(() => undefined);
      }
    });

  bento
    .command('export <tag>')
    .description('export <name>:<version|latest> as <name>-<version>.bentomodel')
    .option('--out <file>', 'where to write the archive (default: <name>-<version>.bentomodel here)')
    .option('--registry <name>', 'source registry (default: the only one)')
    .option('--xz', 'xz-compress (as BentoML does) instead of gzip (as Neutree does)')
    .action(async (tag: string, opts: { out?: string; registry?: string; xz?: boolean }) => {
      const ctx = await getContext();
      const { name, version } = parseBentoTag(tag);
      const { stream, fileName } = await ctx.bento.exportArchive(opts.registry, name, version, opts.xz ? 'xz' : 'gzip');
      const out = resolve(opts.out ?? fileName);
      const tmp = tempPathFor(out);
      try {
        await pipeline(stream, createWriteStream(tmp, { flags: 'wx' }));
        await rename(tmp, out);
      } finally {
        await rm(tmp, { force: true });
      }
      process.stdout.write(`exported ${fileName} to ${out}\n`);
    });

  bento
    .command('rm <tag>')
    .description('remove <name>:<version>; latest moves to the newest remaining version')
    .option('--registry <name>', 'registry (default: the only one)')
    .action(async (tag: string, opts: { registry?: string }) => {
      const ctx = await getContext();
      const { name, version } = parseBentoTag(tag);
      await ctx.bento.deleteModel(opts.registry, name, version);
      process.stdout.write(`removed ${name}:${version}\n`);
    });

  return bento;
}

function parseLabel(text: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new FerryError('bento.invalid_name', `label ${JSON.stringify(text)}: expected key=value`);
  return [text.slice(0, eq), text.slice(eq + 1)];
}
