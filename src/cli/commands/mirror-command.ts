import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { formatTable, humanBytes, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry mirror ...`: the Hub mirror's cache (files it fetched for /hub clients). Reads the disk only: no Redis needed. */
export function registerMirrorCommands(program: Command, getContext: GetContext): Command {
  const mirror = program.command('mirror').description("the Hub mirror's cache (/hub)");
  mirror
    .command('list')
    .description('files the mirror fetched, with sizes and last use')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const ctx = await getContext();
      const { buildMirrorService } = await import('../../mirror/build-mirror-service.js');
      const list = await buildMirrorService(ctx.config, ctx.registry).list();
      if (opts.json) return printJson(list);
      if (list.entries.length === 0) return void process.stdout.write('the mirror cache is empty\n');
      const rows = list.entries.map((e) => [e.repo ?? '-', e.path ?? '-', humanBytes(e.size_bytes), e.last_used_at.replace('T', ' ').slice(0, 19), e.etag.slice(0, 12)]);
      process.stdout.write(formatTable(['REPO', 'FILE', 'SIZE', 'LAST USED', 'ETAG'], rows));
      process.stdout.write(`${list.entries.length} files, ${humanBytes(list.total_bytes)}\n`);
    });
  return mirror;
}
