import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { loadConfig } from '../../src/config/load-config.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { isAlive, readState, SLOT_CONFIG_TOML, waitFor, writeSlot } from '../support/slot-harness.js';
import { makeTempHome } from '../support/temp-home.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const HF_TOKEN = 'hf_backendenvtestsecret000111';
const API_TOKEN = 'ferry-api-backend-env-secret-222333';
const REDIS_PASSWORD = 'redis-backend-env-secret-444555';

let redis: PrivateRedis;
let ctx: FerryContext;
let app: FastifyInstance;
let worker: WorkerProcess;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  redis = await startPrivateRedis({ password: REDIS_PASSWORD });
  const temp = await makeTempHome();
  await writeFile(join(temp.home, 'config.toml'), SLOT_CONFIG_TOML);
  const env = { ...temp.env, REDIS_URL: redis.url, HF_TOKEN, FERRY_API_TOKEN: API_TOKEN };
  ctx = new FerryContext(loadConfig(env));
  app = await buildApp({ services: await ctx.apiServices(), logger: { level: 'error' } });
  worker = spawnWorker(env);
  await worker.ready;
  cleanup = async () => {
    worker.child.kill('SIGTERM');
    await worker.child;
    await app.close();
    await ctx.close();
    await redis.stop();
    await temp.cleanup();
  };
});
afterAll(async () => cleanup());

it("a slot backend's /proc/<pid>/environ holds no HF_TOKEN, API token or Redis password; the slot's own env is there", async () => {
  await mkdir(ctx.config.pullRoot, { recursive: true });
  const file = join(ctx.config.pullRoot, 'env-model.gguf');
  await writeFile(file, 'GGUF fake weights');
  await ctx.models.add({ id: 'env-model', path: file });
  await writeSlot(ctx.config.slotsDir, 'primary', { env: { SLOT_VISIBLE: 'yes' } });
  const res = await app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'env-model' } });
  expect(res.statusCode, res.body).toBe(202);
  const ready = await waitFor('slot ready', async () => {
    const s = await readState(ctx.config.slotsDir, 'primary');
    return s.state === 'ready' || s.state === 'error' ? s : undefined;
  });
  expect(ready.state, String(ready.message)).toBe('ready');
  const pid = ready.pid as number;
  expect(isAlive(pid)).toBe(true);
  const environ = (await readFile(`/proc/${pid}/environ`, 'latin1')).split('\0');
  expect(environ).toContain('SLOT_VISIBLE=yes');
  expect(environ.some((e) => e.startsWith('PATH='))).toBe(true);
  for (const secret of [HF_TOKEN, API_TOKEN, REDIS_PASSWORD]) expect(environ.join('\n')).not.toContain(secret);
  expect(environ.filter((e) => /^(HF_TOKEN|FERRY_API_TOKEN|REDIS_URL)=/.test(e))).toEqual([]);
  // The worker that started it did hold all three: the scrubbing is what kept them out.
  const workerEnviron = await readFile(`/proc/${worker.child.pid}/environ`, 'latin1');
  for (const secret of [HF_TOKEN, API_TOKEN, REDIS_PASSWORD]) expect(workerEnviron).toContain(secret);
  expect(worker.output()).not.toContain(REDIS_PASSWORD);
});
