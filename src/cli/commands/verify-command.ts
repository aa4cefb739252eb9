import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { FerryError } from '../../errors/ferry-error.js';
import type { VerifyStatus } from '../../queue/verify-status.js';
import { printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry model verify <id> | --all`: re-hash on a worker, wait, print; exit 1 when a model is corrupt. */
export function registerVerifyCommands(model: Command, getContext: GetContext): void {
  model
    .command('verify [id]')
    .description("re-hash a model's files against their sha256 (on a worker) and record the result")
    .option('--all', 'every model in the registry')
    .option('--json', 'machine-readable output')
    .action(async (id: string | undefined, opts: { all?: boolean; json?: boolean }) => {
      if (Boolean(id) === Boolean(opts.all)) throw new FerryError('request.invalid', 'name one model id, or pass --all');
      const ctx = await getContext();
      await ctx.connectRedisForClient();
      const { verify } = await ctx.slotJobServices();
      const ids = opts.all ? (await ctx.models.list()).map((m) => m.id) : [id!];
      const jobs = await Promise.all(ids.map((m) => verify.start(m)));
      const results: VerifyStatus[] = [];
      for (const job of jobs) {
        const status = await verify.wait(job.id);
        results.push(status);
        if (!opts.json) process.stdout.write(describe(status) + '\n');
      }
      if (opts.json) printJson(results);
      const corrupt = results.filter((r) => r.state === 'corrupt');
      if (corrupt.length > 0) throw new FerryError('model.corrupt', `${corrupt.map((r) => r.model_id).join(', ')} ${corrupt.length === 1 ? 'is' : 'are'} corrupt`, { hint: 'pull the model again (ferry model pull <id>)' });
      const failed = results.filter((r) => r.state === 'failed');
      if (failed.length > 0) throw new FerryError('internal', `verify failed for ${failed.map((r) => r.model_id).join(', ')}: ${failed[0].error}`);
    });
}

function describe(s: VerifyStatus): string {
  switch (s.state) {
    case 'ok':
      return `${s.model_id}: ok (${s.files.filter((f) => f.ok).length} file${s.files.length === 1 ? '' : 's'}, verified ${s.verified_at})`;
    case 'corrupt':
      return `${s.model_id}: CORRUPT ${s.corrupt!.file}: sha256 ${s.corrupt!.found}, expected ${s.corrupt!.expected}`;
    case 'not_verifiable':
      return `${s.model_id}: not verifiable (${s.reason})`;
    default:
      return `${s.model_id}: ${s.state}${s.error ? `: ${s.error}` : ''}`;
  }
}
