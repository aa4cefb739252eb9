import type { Command } from 'commander';
import type { FerryContext } from '../../app/create-context.js';
import { FerryError } from '../../errors/ferry-error.js';
import { serializeSlotConfig } from '../../slots/slot-config.js';
import { initSlots, type InitResult } from '../../services/init-service.js';
import { humanBytes, printJson } from '../output.js';

type GetContext = () => Promise<FerryContext>;

/** `ferry init`: slot files suggested from the hardware probe. */
export function registerInitCommands(program: Command, getContext: GetContext): void {
  program
    .command('init')
    .description('probe GPUs, RAM and the NPU, and write slot files with a suggested model each')
    .option('--force', 'overwrite slot files that exist')
    .option('--dry-run', 'print what would be written; write nothing')
    .option('--sysfs <dir>', 'where sysfs is mounted (containers, tests)', '/sys')
    .option('--json', 'machine-readable output')
    .action(async (opts: { force?: boolean; dryRun?: boolean; sysfs: string; json?: boolean }) => {
      const ctx = await getContext();
      const result = await initSlots({ slotsDir: ctx.config.slotsDir, force: opts.force, dryRun: opts.dryRun, probe: { sysfsRoot: opts.sysfs, flmBin: ctx.config.flmBin } });
      if (opts.json) return printJson({ probe: result.probe, slots: result.slots.map((s) => ({ name: s.config.slot.name, file: s.file, action: s.action, model: s.entry.id, reason: s.reason, config: s.config })) });
      process.stdout.write(describe(result, Boolean(opts.dryRun)));
      const kept = result.slots.filter((s) => s.action === 'kept');
      if (kept.length > 0 && !opts.dryRun) {
        throw new FerryError('slot.invalid', `${kept.map((s) => s.file).join(', ')} exist${kept.length === 1 ? 's' : ''} and ${kept.length === 1 ? 'was' : 'were'} left as ${kept.length === 1 ? 'it was' : 'they were'}`, { hint: 'pass --force to overwrite' });
      }
    });
}

function describe({ probe, slots }: InitResult, dryRun: boolean): string {
  const out: string[] = [];
  const gpus = probe.gpus.map((g) => `${g.name ?? g.vendor} (${g.card}${g.vramBytes ? `, ${humanBytes(g.vramBytes)}` : ''})`);
  out.push(`RAM ${humanBytes(probe.ramBytes)}, ${probe.cpuCount} CPUs; GPUs: ${gpus.length ? gpus.join(', ') : 'none'}; NPU: ${probe.npu.present ? probe.npu.runtime : 'none'}`);
  out.push(`devices: ${probe.devices.join(', ')}`);
  if (slots.length === 0) out.push('no slot suggested: no catalogue model fits this box');
  for (const s of slots) {
    const verb = { written: 'wrote', overwritten: 'overwrote', kept: 'kept (exists; --force to overwrite)', 'would-write': 'would write', 'would-overwrite': 'would overwrite' }[s.action];
    out.push('', `${verb} ${s.file}: ${s.reason}`);
    if (dryRun) out.push(...serializeSlotConfig(s.config).trimEnd().split('\n').map((l) => `  ${l}`));
  }
  const models = slots.filter((s) => s.action !== 'kept').map((s) => s.entry.id);
  if (models.length > 0) out.push('', 'then pull and load them, e.g.:', ...slots.map((s) => `  ferry slot swap ${s.config.slot.name} --model ${s.entry.id}`));
  return out.join('\n') + '\n';
}
