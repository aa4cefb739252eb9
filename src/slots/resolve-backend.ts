import { FerryError } from '../errors/ferry-error.js';
import type { SlotSection } from './slot-config.js';

/** A `[backends.<name>]` table of config.toml. */
export interface BackendConfig {
  command: string;
  health_url?: string;
  ready_timeout_s?: number;
  stop_grace_s?: number;
}

/** What BackendProcess.start needs besides the placeholder values. */
export interface ResolvedBackend {
  name: string;
  command: string;
  healthUrl: string;
  readyTimeoutMs: number;
  stopGraceMs: number;
}

/**
 * Used when config.toml names no backend of that name. Placeholders: {path} (the weights
 * file, or the FLM model directory), {model} (the registry id; the tag for FLM), {port},
 * {context_size}, {extra_args}. These are starting points: check them against the
 * installed llama-server and flm versions.
 */
export const DEFAULT_BACKENDS: Readonly<Record<string, BackendConfig>> = {
  'llama.cpp': {
    command: 'llama-server -m {path} --host 127.0.0.1 --port {port} --ctx-size {context_size} {extra_args}',
    health_url: 'http://127.0.0.1:{port}/health',
  },
  flm: {
    command: 'flm serve {model} --port {port} {extra_args}',
    health_url: 'http://127.0.0.1:{port}/v1/models',
  },
};

/** A slot's backend: its `backend` key, else llama.cpp, or flm on the npu device. */
export function resolveBackend(slot: Pick<SlotSection, 'name' | 'device' | 'backend'>, configured: Record<string, BackendConfig>): ResolvedBackend {
  const name = slot.backend ?? (slot.device === 'npu' ? 'flm' : 'llama.cpp');
  const backend = configured[name] ?? DEFAULT_BACKENDS[name];
  if (!backend) {
    throw new FerryError('slot.invalid', `slot "${slot.name}" names the backend "${name}", which config.toml does not define`, {
      hint: `add [backends."${name}"] with a command to config.toml, or use one of: ${[...new Set([...Object.keys(configured), ...Object.keys(DEFAULT_BACKENDS)])].join(', ')}`,
    });
  }
  return {
    name,
    command: backend.command,
    healthUrl: backend.health_url ?? 'http://127.0.0.1:{port}/health',
    readyTimeoutMs: (backend.ready_timeout_s ?? 120) * 1000,
    stopGraceMs: (backend.stop_grace_s ?? 10) * 1000,
  };
}
