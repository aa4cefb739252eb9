import type * as Yaml from 'yaml';
import { lazyModule } from '../util/lazy-module.js';

const loadYaml = lazyModule<typeof Yaml>('yaml');
import { FerryError } from '../errors/ferry-error.js';
import { parseSimpleYamlMapping } from './fast-model-yaml.js';

export const MODEL_YAML = 'model.yaml';

/** A model.yaml as read: every key kept, in the file's order. */
export type ModelYaml = Record<string, unknown> & { name?: unknown; version?: unknown; creation_time?: unknown };

/** The fields Ferry writes for a new version; BentoML's key order is kept by construction. */
export interface NewModelYamlInput {
  name: string;
  version: string;
  /** The framework module, e.g. "transformers". */
  module: string;
  labels?: Record<string, string>;
  options?: Record<string, unknown>;
  metadata?: Record<string, unknown>;
  /** Human-readable size, the key Neutree adds (e.g. "4.2GB"). */
  size?: string;
  creationTime?: Date;
}

/**
 * Parses model.yaml text. The core schema keeps timestamps as strings, so creation_time
 * is returned exactly as written (BentoML reads it back with datetime.fromisoformat).
 */
export function parseModelYaml(text: string, file: string): ModelYaml {
  let doc: unknown = parseSimpleYamlMapping(text);
  if (doc !== undefined) return doc as ModelYaml;
  try {
    doc = loadYaml().parse(text, { schema: 'core', uniqueKeys: false });
  } catch (err) {
    throw new FerryError('bento.corrupt', `${file}: model.yaml does not parse: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new FerryError('bento.corrupt', `${file}: model.yaml is not a mapping`);
  }
  return doc as ModelYaml;
}

/** Rewrites one top-level key and keeps everything else (order, unknown keys, comments) as it was. */
export function setModelYamlKey(text: string, key: string, value: unknown): string {
  const doc = loadYaml().parseDocument(text, { schema: 'core' });
  doc.set(key, value);
  return doc.toString({ flowCollectionPadding: false });
}

/** BentoML's timestamp form: timezone-aware ISO 8601 with microseconds. */
export function formatCreationTime(date: Date): string {
  return `${date.toISOString().slice(0, 23)}000+00:00`;
}

/** Sort key for creation_time: epoch microseconds, NaN when absent or unparseable. */
export function creationTimeMicros(value: unknown): number {
  if (typeof value !== 'string' && !(value instanceof Date)) return Number.NaN;
  if (value instanceof Date) return value.getTime() * 1000;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms)) return Number.NaN;
  // Date keeps milliseconds; BentoML writes microseconds, and versions saved in one ms must still order.
  const frac = /\.(\d{4,6})/.exec(value)?.[1];
  return ms * 1000 + (frac ? Number(frac.padEnd(6, '0').slice(3, 6)) : 0);
}

export function buildModelYaml(input: NewModelYamlInput): string {
  const doc: Record<string, unknown> = {
    name: input.name,
    version: input.version,
    module: input.module,
    labels: input.labels ?? {},
    options: input.options ?? {},
    metadata: input.metadata ?? {},
    context: {
      framework_name: input.module,
      framework_versions: {},
      bentoml_version: '1.4.0',
      python_version: '3.11.0',
    },
    signatures: {},
    api_version: 'v1',
    creation_time: formatCreationTime(input.creationTime ?? new Date()),
  };
  if (input.size !== undefined) doc.size = input.size;
  return loadYaml().stringify(doc);
}
