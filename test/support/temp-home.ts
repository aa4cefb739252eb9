import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig, type FerryConfig } from '../../src/config/load-config.js';
import { dropPrefix, REDIS_URL, trackedPrefixes } from './redis-prefix.js';

export { REDIS_URL };

/**
 * A throwaway FERRY_HOME with its own BullMQ prefix; `cleanup` removes both (call it after
 * everything that talks to Redis is closed: the leak check runs after it).
 */
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
  trackedPrefixes().add(prefix);
  const cleanup = async () => {
    await rm(home, { recursive: true, force: true });
    await dropPrefix(prefix);
  };
  return { home, env, config, cleanup };
}

/** Environment for child processes: the parent's PATH etc. plus the test's own settings. */
export function childEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const { HF_TOKEN: _drop, ...rest } = process.env;
  return { ...rest, ...env };
}
