import { join } from 'node:path';
import type { RegistryEntry } from '../../registry/registry-entry.js';
import type { FlmTagInfo } from './flm-list.js';
import type { FlmPullResult } from './flm-source.js';

/**
 * The registry row for a pulled FLM tag, as hal0 writes it: capabilities ["chat"], backend
 * npu, metadata.runtime "flm", path the model directory. Ferry adds the size and FLM's own
 * description of the model under metadata.
 */
export function flmRegistryEntry(result: FlmPullResult, info?: FlmTagInfo, now = new Date()): RegistryEntry {
  const entry: RegistryEntry = {
    id: result.tag,
    path: result.path,
    name: result.tag,
    capabilities: ['chat'],
    backends: ['npu'],
    metadata: { runtime: 'flm' },
    created_at: now.toISOString(),
  };
  if (result.bytesTotal > 0) entry.size_bytes = result.bytesTotal;
  if (info?.details.quantization_level) entry.quant = info.details.quantization_level;
  if (info) {
    entry.files = info.files.map((f) => ({ path: join(result.path, f) }));
    entry.metadata = { ...entry.metadata, ...(info.details.family ? { family: info.details.family } : {}), ...(info.label.length ? { flm_label: info.label } : {}) };
  }
  return entry;
}
