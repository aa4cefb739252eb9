import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import type { SlotView } from '../../services/slot-service.js';
import { formatTable, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry slot ...`: slots and their states, through the same SlotService the API uses. */
export function registerSlotCommands(program: Command, getContext: GetContext): Command {
  const slot = program.command('slot').description('list and show model slots');

  slot
    .command('list')
    .description('list slots with their state and model')
    .option('--json', 'machine-readable output')
    .action(async (opts: { json?: boolean }) => {
      const ctx = await getContext();
      const slots = await ctx.slots.list();
      if (opts.json) return printJson(slots);
      if (slots.length === 0) return void process.stdout.write(`no slots in ${ctx.config.slotsDir}\n`);
      const rows = slots.map((s) => [s.name, s.state, String(s.port), s.device, s.model ?? '-', s.message ?? '']);
      process.stdout.write(formatTable(['NAME', 'STATE', 'PORT', 'DEVICE', 'MODEL', 'MESSAGE'], rows));
    });

  slot
    .command('show <name>')
    .description('show one slot')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: { json?: boolean }) => {
      const view = await (await getContext()).slots.get(name);
      if (opts.json) return printJson(view);
      process.stdout.write(formatSlot(view));
    });

  return slot;
}

function formatSlot(s: SlotView): string {
  const updated = s.updated_at > 0 ? new Date(s.updated_at * 1000).toISOString() : 'never';
  const lines: Array<[string, string]> = [
    ['name', s.name],
    ['state', `${s.state}${s.servable ? ' (serving requests)' : ''}`],
    ['port', String(s.port)],
    ['device', s.device],
    ['backend', s.backend ?? '(device default)'],
    ['model', s.model ?? '(none)'],
    ['loaded', s.model_id ?? '-'],
    ['context_size', s.context_size === null ? '-' : String(s.context_size)],
    ['updated', updated],
  ];
  if (s.message) lines.push(['message', s.message]);
  return lines.map(([k, v]) => `${k.padEnd(14)}${v}`).join('\n') + '\n';
}
