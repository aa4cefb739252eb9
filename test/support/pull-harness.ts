import { writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { startWorkers, type RunningWorkers } from '../../src/app/start-workers.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { PullStatus } from '../../src/queue/pull-status.js';
import { startFakeHub, type FakeHub, type FakeHubOptions } from './fake-hub.js';
import { TEST_TLS } from './test-tls.js';
import { makeTempHome } from './temp-home.js';
import { dropPrefix } from './redis-prefix.js';

export interface PullHarness {
  hub: FakeHub;
  home: string;
  env: Record<string, string>;
  ctx: FerryContext;
  app: FastifyInstance;
  workerLog: string[];
  workers?: RunningWorkers;
  startWorker(extraEnv?: Record<string, string>): Promise<RunningWorkers>;
  waitForState(modelId: string, states: string[], timeoutMs?: number): Promise<PullStatus>;
  cleanup(): Promise<void>;
}

/** Test settings: short stall timeout, fast retries, short job lock, no disk margin. */
export const TEST_CONFIG_TOML = `stall_timeout_s = 2\nretry_base_ms = 50\njob_lock_ms = 3000\ndisk_margin_bytes = 0\n`;

/**
 * A fake Hub, a temp FERRY_HOME with its own BullMQ prefix on the real Redis, an API app
 * (driven with inject) and, unless told otherwise, one in-process worker.
 * `hubTls`: the fake Hub speaks https (test/support/test-tls.ts); only processes started with
 * NODE_EXTRA_CA_CERTS trust it.
 */
/** `hubTls`: the fake Hub speaks https (test/support/test-tls.ts); only processes started with NODE_EXTRA_CA_CERTS trust it. */
/** `redisUrl`: a private redis-server instead of the shared one; `hub`: the fake Hub's own options. */
export async function startPullHarness(
  opts: { worker?: boolean; configToml?: string; hubToken?: boolean; hubTls?: boolean; redisUrl?: string; hub?: FakeHubOptions } = {},
): Promise<PullHarness> {
  const hub = await startFakeHub({ ...(opts.hubTls ? { tls: TEST_TLS } : {}), ...opts.hub });
  const temp = await makeTempHome({ HF_ENDPOINT: hub.url, ...(opts.hubToken ? { HF_TOKEN: hub.token } : {}), ...(opts.redisUrl ? { REDIS_URL: opts.redisUrl } : {}) });
  await mkdir(temp.home, { recursive: true });
  await writeFile(join(temp.home, 'config.toml'), opts.configToml ?? TEST_CONFIG_TOML);
  const config = loadConfig(temp.env);
  const ctx = new FerryContext(config);
  const app = await buildApp({ services: await ctx.apiServices() });
  const workerLog: string[] = [];
  const running: RunningWorkers[] = [];
  const harness: PullHarness = {
    hub,
    home: temp.home,
    env: temp.env,
    ctx,
    app,
    workerLog,
    async startWorker(extraEnv = {}) {
      const wctx = new FerryContext(loadConfig({ ...temp.env, ...extraEnv }));
      const w = await startWorkers(wctx, { log: (m) => workerLog.push(m) });
      const handle = {
        close: async () => {
          await w.close();
          await wctx.close();
        },
      };
      running.push(handle);
      return handle;
    },
    async waitForState(modelId, states, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: PullStatus | undefined;
      while (Date.now() < deadline) {
        const res = await app.inject({ method: 'GET', url: `/api/models/${encodeURIComponent(modelId)}/pull/status` });
        if (res.statusCode === 200) {
          last = res.json() as PullStatus;
          if (states.includes(last.state)) return last;
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`pull of ${modelId} did not reach ${states.join('|')} in ${timeoutMs} ms; last: ${JSON.stringify(last)}; worker log: ${workerLog.slice(-5).join(' | ')}`);
    },
    async cleanup() {
      for (const w of running) await w.close().catch(() => undefined);
      await app.close();
      // A private Redis may be down at the end of a restart test (the shared one is cleaned by temp.cleanup).
      if (opts.redisUrl) await dropPrefix(config.queuePrefix, opts.redisUrl).catch(() => undefined);
      await ctx.close();
      await hub.close();
      await temp.cleanup(); // drops the prefix last, after every connection that could write to it is closed
    },
  };
  if (opts.worker !== false) harness.workers = await harness.startWorker();
  return harness;
}

export { dropPrefix } from './redis-prefix.js';
