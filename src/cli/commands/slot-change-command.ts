import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { FerryError } from '../../errors/ferry-error.js';
import type { SlotChangeStarted, SlotDetail } from '../../services/slot-control-service.js';
import { humanBytes, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry model assign` and `ferry slot swap`: the file change here, the loading in jobs; waits unless --detach. */
export function registerSlotChangeCommands(model: Command, slot: Command, getContext: GetContext): void {
  model
    .command('assign <id>')
    .description("make a model a slot's default and load it (a warm job on a worker)")
    .requiredOption('--slot <name>', 'the slot')
    .option('--detach', 'enqueue and return at once')
    .option('--json', 'machine-readable output')
    .action(async (id: string, opts: { slot: string; detach?: boolean; json?: boolean }) => {
      const ctx = await getContext();
      await ctx.connectRedisForClient();
      const { slotControl } = await ctx.slotJobServices();
      await finish(ctx, await slotControl.assign(opts.slot, id), opts);
    });

  slot
    .command('unload <name>')
    .description("stop the slot's backend (on a worker) and leave it offline; its default model is cleared")
    .option('--detach', 'enqueue and return at once')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { detach?: boolean; json?: boolean }) => {
      const ctx = await getContext();
      await ctx.connectRedisForClient();
      const { slotControl } = await ctx.slotJobServices();
      const started = await slotControl.unload(name);
      if (opts.detach) {
        if (opts.json) return printJson(started);
        return void process.stdout.write(`${name}: unloading (job ${started.job_id}); follow it with: ferry slot show ${name}\n`);
      }
      const pulls = await ctx.pulls();
      for (let waited = 0, warned = false; !(await slotControl.warmFinished(started.job_id)); waited += 200) {
        if (!warned && waited >= 3000 && (await pulls.workerCount()) === 0) {
          warned = true; // workers run pull, verify and warm jobs together
          process.stderr.write('ferry: no worker is running, so the unload waits until one starts.\n  hint: start one with `ferry worker` (or `npm run worker`); `ferry serve` runs one too\n');
        }
        await new Promise((r) => setTimeout(r, 200));
      }
      const final = await slotControl.get(name);
      if (opts.json) return printJson(final);
      process.stdout.write(`${name}: ${final.state}${started.model ? ` (${started.model} unloaded)` : ''}\n`);
      if (final.state !== 'offline') throw new FerryError('slot.backend_failed', final.message ?? `slot ${name} is ${final.state}, not offline`);
    });

  slot
    .command('swap <name>')
    .description('load another model in a slot, pulling and verifying it first when it is missing')
    .requiredOption('--model <ref>', 'a registry id, a catalogue id, an FLM tag or hf.co/{org}/{repo}:{QUANT}')
    .option('--detach', 'enqueue and return at once')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { model: string; detach?: boolean; json?: boolean }) => {
      const ctx = await getContext();
      await ctx.connectRedisForClient();
      const { slotControl } = await ctx.slotJobServices();
      await finish(ctx, await slotControl.swap(name, opts.model), opts);
    });
}

async function finish(ctx: FerryContext, started: SlotChangeStarted, opts: { detach?: boolean; json?: boolean }): Promise<void> {
  if (opts.detach) {
    if (opts.json) return printJson(started);
    return void process.stdout.write(`${started.slot}: ${started.action === 'pull' ? `pulling ${started.model} (job ${started.job_id}), then verify and load` : `loading ${started.model} (job ${started.job_id})`}\n`);
  }
  const final = await waitForSlot(ctx, started, !opts.json);
  if (opts.json) printJson(final);
  else process.stdout.write(`${final.name}: ${final.state}${final.model_id ? ` (${final.model_id})` : ''}\n`);
  if (final.state === 'error') throw new FerryError('slot.backend_failed', final.message ?? `slot ${final.name} failed`);
}

/** Polls the slot until its state says the change is over (ready with the model, error or offline). */
async function waitForSlot(ctx: FerryContext, started: SlotChangeStarted, progress: boolean): Promise<SlotDetail> {
  const { slotControl } = await ctx.slotJobServices();
  const since = Date.now() / 1000 - 1;
  let last = '';
  for (;;) {
    const s = await slotControl.get(started.slot);
    const line = s.pull && s.state === 'pulling' ? `pulling ${humanBytes(s.pull.bytes_downloaded)}/${humanBytes(s.pull.bytes_total)}` : `${s.state}${s.message ? `: ${s.message.split('\n')[0]}` : ''}`;
    if (progress && line !== last) process.stderr.write(`${started.slot}: ${line}\n`);
    last = line;
    if (started.action === 'warm' && (await slotControl.warmFinished(started.job_id!))) return slotControl.get(started.slot);
    const fresh = s.updated_at >= since;
    if (fresh && s.servable && s.model_id === started.model) return s;
    if (fresh && (s.state === 'error' || (s.state === 'offline' && started.action === 'pull'))) return s;
    await new Promise((r) => setTimeout(r, 300));
  }
}
