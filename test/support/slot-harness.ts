import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { writeSlotConfig, type SlotConfig } from '../../src/slots/slot-config.js';
import { TEST_CONFIG_TOML } from './pull-harness.js';
import { REPO_ROOT } from './worker-process.js';

export const FAKE_BACKEND = join(REPO_ROOT, 'test/fixtures/fake-backend');

/**
 * config.toml for slot tests: every backend is the fake backend (llama.cpp by `-m {path}`,
 * flm by `--model {model}`), with short timeouts; `llama-slow` gives up after 1.5 s.
 */
export const SLOT_CONFIG_TOML = `${TEST_CONFIG_TOML}
[backends."llama.cpp"]
command = "${FAKE_BACKEND} -m {path} --port {port} --ctx-size {context_size} {extra_args}"
ready_timeout_s = 10
stop_grace_s = 1

[backends.llama-slow]
command = "${FAKE_BACKEND} -m {path} --port {port}"
ready_timeout_s = 1.5
stop_grace_s = 1

[backends.flm]
command = "${FAKE_BACKEND} --model {model} --port {port}"
ready_timeout_s = 10
stop_grace_s = 1
`;

/** A port in hal0's slot range (8081-8200) that nothing listens on now. */
export async function freeSlotPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 8081 + Math.floor(Math.random() * 120);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port in 8081-8200');
}

export async function writeSlot(slotsDir: string, name: string, opts: { device?: SlotConfig['slot']['device']; backend?: string; model?: string; env?: Record<string, string> } = {}): Promise<SlotConfig> {
  const config: SlotConfig = {
    slot: { name, port: await freeSlotPort(), device: opts.device ?? 'cpu', ...(opts.backend ? { backend: opts.backend } : {}) },
    model: opts.model ? { default: opts.model } : {},
    server: opts.env ? { env: opts.env } : {},
  };
  await writeSlotConfig(slotsDir, config);
  return config;
}

/** The states a slot went through, from state.json's history. */
export async function stateHistory(slotsDir: string, name: string): Promise<string[]> {
  const state = JSON.parse(await readFile(join(slotsDir, name, 'state.json'), 'utf8'));
  return (state.history ?? []).map((h: { state: string }) => h.state);
}

export async function readState(slotsDir: string, name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(slotsDir, name, 'state.json'), 'utf8').catch(() => '{"state":"offline"}'));
}

export async function waitFor<T>(what: string, check: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    const value = await check().catch((err: unknown) => ((last = err), undefined));
    if (value) return value;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what}: not reached in ${timeoutMs} ms${last ? ` (${String(last)})` : ''}`);
}

export { isProcessAlive as isAlive } from '../../src/util/process-alive.js';

export async function writeConfig(home: string, text: string): Promise<void> {
  await writeFile(join(home, 'config.toml'), text);
}
