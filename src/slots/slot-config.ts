import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { FerryError } from '../errors/ferry-error.js';
import { describe as quote } from '../registry/model-id.js';
import { writeFileAtomic } from '../stores/atomic-write.js';
import { withFileLock } from '../stores/file-lock.js';

/** hal0's devices; a slot runs its backend on exactly one. */
export const SLOT_DEVICES = ['gpu-rocm', 'gpu-vulkan', 'gpu-cuda', 'cpu', 'npu'] as const;
export type SlotDevice = (typeof SLOT_DEVICES)[number];

/** hal0 gives slots the ports after its own API (8080) up to 8200. */
export const SLOT_PORT_MIN = 8081;
export const SLOT_PORT_MAX = 8200;
const SLOT_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;

/** `[slot]`. Keys hal0 adds later are kept as they are. */
export interface SlotSection {
  name: string;
  port: number;
  device: SlotDevice;
  /** A key of config `backends` (e.g. "llama.cpp", "flm"); unset: the device's default. */
  backend?: string;
  idle_timeout_s?: number;
  autoload?: boolean;
  priority?: number;
  [key: string]: unknown;
}

/** `[model]`: `default` is the registry id; empty or absent means the slot is inactive. */
export interface SlotModelSection {
  default?: string;
  context_size?: number;
  [key: string]: unknown;
}

/** `[server]`: extra backend arguments (a list, or one string split like a command line) and environment. */
export interface SlotServerSection {
  extra_args?: string[] | string;
  env?: Record<string, string>;
  [key: string]: unknown;
}

/** One `slots/<name>.toml`. Tables Ferry does not know are kept in the object as they are. */
export interface SlotConfig {
  slot: SlotSection;
  model: SlotModelSection;
  server: SlotServerSection;
  [key: string]: unknown;
}

export function isValidSlotName(name: unknown): name is string {
  return typeof name === 'string' && SLOT_NAME.test(name);
}

export function assertSlotName(name: unknown): string {
  if (!isValidSlotName(name)) {
    throw new FerryError('slot.invalid', `invalid slot name ${quote(name)}`, {
      hint: 'slot names are [a-z0-9][a-z0-9_-]{0,31}, e.g. "primary" or "embed"',
    });
  }
  return name;
}

export function slotConfigPath(slotsDir: string, name: string): string {
  return join(slotsDir, `${assertSlotName(name)}.toml`);
}

/** Reads one slot; `slot.not_found` when it has no file. */
export async function readSlotConfig(slotsDir: string, name: string): Promise<SlotConfig> {
  const file = slotConfigPath(slotsDir, name);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FerryError('slot.not_found', `no slot named "${name}"`, { hint: `expected ${file}` });
    throw err;
  }
  const config = parseSlotConfig(text, file);
  if (config.slot.name !== name) {
    throw new FerryError('slot.invalid', `${file}: [slot] name is "${config.slot.name}" but the file is named for "${name}"`);
  }
  return config;
}

/** Every `<name>.toml` in the slots directory, sorted by name; an invalid file is an error naming it. */
export async function listSlotConfigs(slotsDir: string): Promise<SlotConfig[]> {
  let names: string[];
  try {
    names = await readdir(slotsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const slots = names
    .filter((n) => n.endsWith('.toml') && isValidSlotName(n.slice(0, -5)))
    .map((n) => n.slice(0, -5))
    .sort();
  return Promise.all(slots.map((n) => readSlotConfig(slotsDir, n)));
}

/** Validates and writes a slot file atomically (temp file, fsync, rename). */
export async function writeSlotConfig(slotsDir: string, config: SlotConfig): Promise<void> {
  const file = slotConfigPath(slotsDir, config.slot?.name);
  const text = serializeSlotConfig(config, file);
  await mkdir(slotsDir, { recursive: true });
  await writeFileAtomic(file, text);
}

/**
 * Read, change and write one slot under its lock, so two writers (the CLI and a warm job)
 * cannot lose each other's change. `change` sees the file as it is under the lock.
 */
export async function updateSlotConfig(slotsDir: string, name: string, change: (config: SlotConfig) => SlotConfig | void): Promise<SlotConfig> {
  await mkdir(slotsDir, { recursive: true });
  return withFileLock(`${slotConfigPath(slotsDir, name)}.lock`, async () => {
    const current = await readSlotConfig(slotsDir, name);
    const next = change(current) ?? current;
    if (next.slot?.name !== name) throw new FerryError('slot.invalid', `a slot cannot be renamed ("${name}" to ${quote(next.slot?.name)})`);
    await writeSlotConfig(slotsDir, next);
    return next;
  });
}

export async function removeSlotConfig(slotsDir: string, name: string): Promise<boolean> {
  const file = slotConfigPath(slotsDir, name);
  try {
    await rm(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

export function parseSlotConfig(text: string, file: string): SlotConfig {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (err) {
    const where = err instanceof TomlError ? `:${err.line}:${err.column}` : '';
    throw new FerryError('slot.invalid', `${file}${where}: ${(err as Error).message.split('\n')[0]}`);
  }
  const config = { ...doc, slot: doc.slot ?? {}, model: doc.model ?? {}, server: doc.server ?? {} } as SlotConfig;
  validateSlotConfig(config, file);
  return config;
}

export function serializeSlotConfig(config: SlotConfig, file = `${config.slot?.name}.toml`): string {
  validateSlotConfig(config, file);
  // [slot], [model], [server] first as hal0 writes them; other tables after, as they came.
  const { slot, model, server, ...rest } = config;
  const ordered: Record<string, unknown> = { slot: dropUndefined(slot), model: dropUndefined(model), server: dropUndefined(server), ...rest };
  return stringifyToml(ordered) + '\n';
}

/** Throws `slot.invalid` naming the file and key of the first problem. */
export function validateSlotConfig(config: SlotConfig, file: string): void {
  const bad = (key: string, why: string): never => {
    throw new FerryError('slot.invalid', `${file}: ${key} ${why}`);
  };
  for (const table of ['slot', 'model', 'server'] as const) {
    if (typeof config[table] !== 'object' || config[table] === null || Array.isArray(config[table])) bad(`[${table}]`, 'must be a table');
  }
  const { slot, model, server } = config;
  if (!isValidSlotName(slot.name)) bad('slot.name', `must match [a-z0-9][a-z0-9_-]{0,31}, got ${quote(slot.name)}`);
  if (!Number.isInteger(slot.port) || slot.port < SLOT_PORT_MIN || slot.port > SLOT_PORT_MAX) {
    bad('slot.port', `must be an integer ${SLOT_PORT_MIN}-${SLOT_PORT_MAX}, got ${quote(String(slot.port))}`);
  }
  if (!(SLOT_DEVICES as readonly unknown[]).includes(slot.device)) bad('slot.device', `must be one of ${SLOT_DEVICES.join(', ')}, got ${quote(slot.device)}`);
  if (slot.backend !== undefined && (typeof slot.backend !== 'string' || slot.backend.length === 0)) bad('slot.backend', 'must be a non-empty string');
  if (slot.idle_timeout_s !== undefined && !(Number.isInteger(slot.idle_timeout_s) && slot.idle_timeout_s >= 0)) bad('slot.idle_timeout_s', 'must be a non-negative integer');
  if (slot.autoload !== undefined && typeof slot.autoload !== 'boolean') bad('slot.autoload', 'must be true or false');
  if (slot.priority !== undefined && !Number.isInteger(slot.priority)) bad('slot.priority', 'must be an integer');
  if (model.default !== undefined && typeof model.default !== 'string') bad('model.default', 'must be a string (a registry id)');
  if (model.context_size !== undefined && !(Number.isInteger(model.context_size) && model.context_size > 0)) bad('model.context_size', 'must be a positive integer');
  const args = server.extra_args;
  if (args !== undefined && typeof args !== 'string' && !(Array.isArray(args) && args.every((a) => typeof a === 'string'))) {
    bad('server.extra_args', 'must be a string or a list of strings');
  }
  if (server.env !== undefined) {
    if (typeof server.env !== 'object' || server.env === null || Array.isArray(server.env)) bad('server.env', 'must be a table');
    for (const [k, v] of Object.entries(server.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) bad(`server.env.${k}`, 'is not a valid environment variable name');
      if (typeof v !== 'string') bad(`server.env.${k}`, 'must be a string');
    }
  }
}

/** TOML has no null: a key set to undefined in code is left out of the file. */
function dropUndefined<T extends Record<string, unknown>>(table: T): T {
  return Object.fromEntries(Object.entries(table).filter(([, v]) => v !== undefined)) as T;
}
