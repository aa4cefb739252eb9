import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type FerryConfig } from '../../src/config/load-config.js';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** A throwaway FERRY_HOME with its own BullMQ prefix, removed by `cleanup`. */
export async function makeTempHome(extraEnv: Record<string, string> = {}): Promise<{
  home: string;
  env: Record<string, string>;
  config: FerryConfig;
  cleanup: () => Promise<void>;
}> {
  const home = await mkdtemp(join(tmpdir(), 'ferry-test-'));
  const prefix = `{ferry-test-${randomBytes(4).toString('hex')}}`;
  const env = { FERRY_HOME: home, REDIS_URL, FERRY_QUEUE_PREFIX: prefix, HF_HOME: join(home, 'hf-home'), ...extraEnv };
  const config = loadConfig(env);
  return { home, env, config, cleanup: () => rm(home, { recursive: true, force: true }) };
}

/** Environment for child processes: the parent's PATH etc. plus the test's own settings. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const { HF_TOKEN: _drop, ...rest } = process.env;
  return { ...rest, ...env };
}
