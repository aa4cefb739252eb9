import { access } from 'node:fs/promises';
import { CURATED_CATALOGUE, type CatalogueEntry } from '../registry/curated.js';
import { slotConfigPath, writeSlotConfig } from '../slots/slot-config.js';
import { probeHardware, suggestSlots, type HardwareProbe, type ProbeOptions, type SlotSuggestion } from './hardware-probe.js';

export interface InitOptions {
  slotsDir: string;
  probe?: ProbeOptions;
  /** Overwrite slot files that exist. */
  force?: boolean;
  /** Decide and report, write nothing. */
  dryRun?: boolean;
  catalogue?: readonly CatalogueEntry[];
}

export interface InitPlanItem extends SlotSuggestion {
  file: string;
  /** written, overwritten, kept (exists and no --force), or would-write / would-overwrite (dry run). */
  action: 'written' | 'overwritten' | 'kept' | 'would-write' | 'would-overwrite';
}

export interface InitResult {
  probe: HardwareProbe;
  slots: InitPlanItem[];
}

/**
 * `ferry init`: probe the box, suggest one model per slot from the curated catalogue and write
 * the slot files. An existing slot file is never replaced without `force`; nothing is pulled
 * (the printed commands do that).
 */
export async function initSlots(options: InitOptions): Promise<InitResult> {
  const probe = await probeHardware(options.probe);
  const suggestions = suggestSlots(probe, options.catalogue ?? CURATED_CATALOGUE);
  const slots: InitPlanItem[] = [];
  for (const s of suggestions) {
    const file = slotConfigPath(options.slotsDir, s.config.slot.name);
    const exists = await access(file).then(() => true, () => false);
    let action: InitPlanItem['action'];
    if (exists && !options.force) action = 'kept';
    else if (options.dryRun) action = exists ? 'would-overwrite' : 'would-write';
    else {
      await writeSlotConfig(options.slotsDir, s.config);
      action = exists ? 'overwritten' : 'written';
    }
    slots.push({ ...s, file, action });
  }
  return { probe, slots };
}
