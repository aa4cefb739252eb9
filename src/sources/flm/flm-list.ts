import { FerryError } from '../../errors/ferry-error.js';

/** One row of `flm list -j`, reduced to what Ferry uses (FLM's other keys are kept in `raw`). */
export interface FlmTagInfo {
  /** The tag, `family:size` (FLM prints it as both `name` and `model`). */
  tag: string;
  installed: boolean;
  /** Bytes of all the tag's files together; 0 when FLM does not say. */
  size: number;
  /** Memory the model needs when loaded, in GB, as FLM estimates it. */
  footprintGb?: number;
  files: string[];
  details: { format?: string; family?: string; parameter_size?: string; quantization_level?: string };
  label: string[];
  vlm: boolean;
  raw: Record<string, unknown>;
}

/**
 * Parses the output of `flm list -j`. FLM may print `[WARNING] ...` lines (firmware, driver)
 * before the JSON on the same stream, so those lines are dropped before parsing.
 */
export function parseFlmList(stdout: string): FlmTagInfo[] {
  const json = stdout
    .split(/\r?\n/)
    .filter((line) => !/^\s*\[WARNING\]/.test(line))
    .join('\n');
  const start = json.indexOf('{');
  let doc: unknown;
  try {
    if (start < 0) throw new Error('no JSON object in the output');
    doc = JSON.parse(json.slice(start));
  } catch (err) {
    throw new FerryError('source.flm_failed', `cannot parse the output of "flm list -j": ${(err as Error).message}`, {
      hint: 'check that the flm binary is FastFlowLM and recent enough to support -j',
    });
  }
  const models = (doc as { models?: unknown }).models;
  if (!Array.isArray(models)) {
    throw new FerryError('source.flm_failed', 'the output of "flm list -j" has no "models" array');
  }
  return models.flatMap((row): FlmTagInfo[] => {
    if (typeof row !== 'object' || row === null) return [];
    const r = row as Record<string, unknown>;
    const tag = typeof r.model === 'string' ? r.model : typeof r.name === 'string' ? r.name : undefined;
    if (!tag) return [];
    return [
      {
        tag,
        installed: r.installed === true,
        size: typeof r.size === 'number' && r.size >= 0 ? r.size : 0,
        footprintGb: typeof r.footprint === 'number' ? r.footprint : undefined,
        files: Array.isArray(r.files) ? r.files.filter((f): f is string => typeof f === 'string') : [],
        details: typeof r.details === 'object' && r.details !== null ? (r.details as FlmTagInfo['details']) : {},
        label: Array.isArray(r.label) ? r.label.filter((l): l is string => typeof l === 'string') : typeof r.label === 'string' ? [r.label] : [],
        vlm: r.vlm === true,
        raw: r,
      },
    ];
  });
}
