import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { TEST_CONFIG_TOML } from '../support/pull-harness.js';
import { runFerry, startApiProcess, type ApiProcess } from '../support/api-process.js';
import { startPrivateRedis, type PrivateRedis } from '../support/private-redis.js';
import { makeTempHome } from '../support/temp-home.js';
import { TEST_TLS } from '../support/test-tls.js';
import { REPO_ROOT, spawnWorker, type WorkerProcess } from '../support/worker-process.js';

const PASSWORD = 'tls-redis-password-778899';

describe('rediss:// with a password (self-signed certificate) for the API, a worker and the CLI', () => {
  let redis: PrivateRedis;
  let hub: FakeHub;
  let api: ApiProcess;
  let worker: WorkerProcess;
  let env: Record<string, string>;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    redis = await startPrivateRedis({ password: PASSWORD, tls: { certPath: TEST_TLS.certPath, keyPath: join(REPO_ROOT, 'test/fixtures/tls/localhost.key') } });
    expect(redis.url.startsWith('rediss://')).toBe(true);
    hub = await startFakeHub();
    hub.addRepo({ id: 'acme/tls-GGUF', files: [{ path: 'tls-Q4_K_M.gguf', size: 300 * 1024, seed: 9 }] });
    const temp = await makeTempHome({ HF_ENDPOINT: hub.url });
    await writeFile(join(temp.home, 'config.toml'), TEST_CONFIG_TOML);
    env = { ...temp.env, REDIS_URL: redis.url, NODE_EXTRA_CA_CERTS: TEST_TLS.certPath };
    api = await startApiProcess(env);
    worker = spawnWorker(env);
    await worker.ready;
    cleanup = async () => {
      worker.child.kill('SIGTERM');
      await worker.child;
      await api.stop();
      await redis.stop();
      await hub.close();
      await temp.cleanup();
    };
  }, 60_000);
  afterAll(async () => cleanup());

  it('a pull queued by the API runs on the worker; the CLI reads its status; the password is printed nowhere', async () => {
    expect((await fetch(`${api.url}/healthz`)).status).toBe(200);
    const res = await fetch(`${api.url}/api/models/tls-q4_k_m/pull`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hf_repo: 'acme/tls-GGUF', hf_file: 'tls-Q4_K_M.gguf' }),
    });
    expect(res.status).toBe(202);
    const deadline = Date.now() + 30_000;
    let state = '';
    while (Date.now() < deadline && state !== 'completed' && state !== 'failed') {
      state = ((await (await fetch(`${api.url}/api/models/tls-q4_k_m/pull/status`)).json()) as { state: string }).state;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(state, worker.output()).toBe('completed');
    const cli = await runFerry(['pull', 'status', 'tls-q4_k_m', '--json'], env);
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toMatchObject({ model_id: 'tls-q4_k_m', state: 'completed' });
    expect(worker.output()).toContain('rediss://***@localhost');
    for (const out of [worker.output(), api.output(), cli.stdout, cli.stderr]) expect(out).not.toContain(PASSWORD);
  });
});
