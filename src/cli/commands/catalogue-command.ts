import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import type { CatalogueBackend, CatalogueCapability } from '../../registry/curated.js';
import { FerryError } from '../../errors/ferry-error.js';
import { formatTable, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

const CAPABILITIES = ['chat', 'embed', 'rerank', 'vision'];
const BACKENDS = ['llama.cpp', 'npu'];

/** `ferry model catalogue`: attached to the `model` command that model-command.ts creates. */
export function registerCatalogueCommands(model: Command, getContext: GetContext): void {
  model
    .command('catalogue')
    .alias('catalog')
    .description('list the curated models Ferry suggests (not the registry)')
    .option('--capability <kind>', `only ${CAPABILITIES.join(', ')}`)
    .option('--backend <name>', `only ${BACKENDS.join(', ')}`)
    .option('--json', 'machine-readable output')
    .action(async (opts: { capability?: string; backend?: string; json?: boolean }) => {
      if (opts.capability && !CAPABILITIES.includes(opts.capability)) throw new FerryError('request.invalid', `--capability must be one of ${CAPABILITIES.join(', ')}`);
      if (opts.backend && !BACKENDS.includes(opts.backend)) throw new FerryError('request.invalid', `--backend must be one of ${BACKENDS.join(', ')}`);
      const ctx = await getContext();
      const items = await ctx.catalogue.list({ capability: opts.capability as CatalogueCapability, backend: opts.backend as CatalogueBackend });
      if (opts.json) return printJson(items);
      const rows = items.map((e) => [
        e.id,
        e.capability,
        e.backend,
        `${e.size_gb} GB`,
        `${e.vram_gb_min} GB`,
        e.recommended_slot,
        e.in_registry ? 'yes' : '',
        e.hf_repo ? `${e.hf_repo}/${e.hf_file}` : '(flm tag)',
      ]);
      process.stdout.write(formatTable(['ID', 'KIND', 'BACKEND', 'SIZE', 'NEEDS', 'SLOT', 'PRESENT', 'SOURCE'], rows));
    });
}
