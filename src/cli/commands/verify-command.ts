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
      const bad = results.filter((r) => r.state === 'corrupt' || r.state === 'missing');
      if (bad.length > 0) {
        const missing = bad.every((r) => r.state === 'missing');
        const ids = bad.map((r) => r.model_id);
        // A row marked corrupt is not "present" to a pull, so this command fetches it again.
        throw new FerryError(missing ? 'model.files_missing' : 'model.corrupt', `${ids.join(', ')} ${ids.length === 1 ? 'is' : 'are'} ${missing ? 'missing files' : 'corrupt'}`, {
          hint: `pull ${ids.length === 1 ? 'it' : 'them'} again: ${ids.map((m) => `ferry model pull ${m}`).join('; ')}`,
        });
      }
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
    case 'missing':
      return `${s.model_id}: MISSING ${s.corrupt!.file} (expected sha256 ${s.corrupt!.expected})`;
    case 'not_verifiable':
      return `${s.model_id}: not verifiable (${s.reason})`;
    default:
      return `${s.model_id}: ${s.state}${s.error ? `: ${s.error}` : ''}`;
  }
}
