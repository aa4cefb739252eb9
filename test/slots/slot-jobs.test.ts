import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSlotConfig } from '../../src/slots/slot-config.js';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { REPO_ROOT, spawnWorker } from '../support/worker-process.js';
import { childEnv } from '../support/temp-home.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');
import { isAlive, readState, SLOT_CONFIG_TOML, stateHistory, waitFor, writeSlot } from '../support/slot-harness.js';

let h: PullHarness;
let slotsDir: string;
const pids: number[] = [];

beforeEach(async () => {
  h = await startPullHarness({ configToml: SLOT_CONFIG_TOML });
  slotsDir = h.ctx.config.slotsDir;
});
afterEach(async () => {
  await h.cleanup(); // stops the workers, whose close() stops their backends
  for (const pid of pids.splice(0)) {
    expect(isAlive(pid), `backend ${pid} still running after cleanup`).toBe(false);
  }
});

async function addModel(id: string, bytes = 'GGUF fake weights'): Promise<string> {
  await mkdir(h.ctx.config.pullRoot, { recursive: true });
  const file = join(h.ctx.config.pullRoot, `${id}.gguf`);
  await writeFile(file, bytes);
  await h.ctx.models.add({ id, path: file });
  return file;
}

async function slotState(name: string, states: string[], timeoutMs = 20_000): Promise<Record<string, unknown>> {
  return waitFor(`slot ${name} in ${states.join('|')}`, async () => {
    const s = await readState(slotsDir, name);
    return states.includes(s.state as string) ? s : undefined;
  }, timeoutMs);
}

describe('assign and warm', () => {
  it('loads the model through warming -> ready, then swaps it through unloading -> warming -> ready', async () => {
    const fileA = await addModel('model-a');
    await addModel('model-b');
    await writeSlot(slotsDir, 'primary');
    const res = await h.app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'model-a' } });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ slot: 'primary', model: 'model-a', action: 'warm' });
    expect(res.json().job_id).toMatch(/^[0-9a-f]{16}$/);
    const ready = await slotState('primary', ['ready', 'error']);
    expect(ready.state, String(ready.message)).toBe('ready');
    expect(ready).toMatchObject({ model_id: 'model-a', backend: 'llama.cpp' });
    expect((await readSlotConfig(slotsDir, 'primary')).model.default).toBe('model-a');
    const pidA = ready.pid as number;
    pids.push(pidA);
    expect(isAlive(pidA)).toBe(true); // the backend outlives the job
    // The registry path was substituted into the command, and the backend answers.
    const health = await fetch(`http://127.0.0.1:${ready.port}/health`);
    expect(health.status).toBe(200);
    expect(ready.program).toContain('fake-backend');
    void fileA;

    // /v1/models lists the loaded slot by its name.
    const models = (await h.app.inject('/v1/models')).json().data;
    expect(models).toContainEqual(expect.objectContaining({ id: 'primary', owned_by: 'ferry', model_id: 'model-a' }));
    // A model assigned to a slot cannot be deleted.
    const del = await h.app.inject({ method: 'DELETE', url: '/api/models/model-a' });
    expect(del.statusCode).toBe(409);
    expect(del.json().error.code).toBe('model.in_use');

    await h.app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'model-b' } });
    const again = await waitFor('model-b ready', async () => {
      const s = await readState(slotsDir, 'primary');
      return s.state === 'ready' && s.model_id === 'model-b' ? s : s.state === 'error' ? s : undefined;
    });
    expect(again.state, String(again.message)).toBe('ready');
    pids.push(again.pid as number);
    expect(await stateHistory(slotsDir, 'primary')).toEqual(['warming', 'ready', 'unloading', 'warming', 'ready']);
    expect(isAlive(pidA)).toBe(false); // the old backend was stopped
  });

  it('ferry slot unload stops the backend, leaves the slot offline and frees the model for removal', async () => {
    await addModel('model-u');
    await writeSlot(slotsDir, 'primary');
    await h.app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'model-u' } });
    const ready = await slotState('primary', ['ready', 'error']);
    expect(ready.state, String(ready.message)).toBe('ready');
    const pid = ready.pid as number;
    pids.push(pid);
    const refused = await h.app.inject({ method: 'DELETE', url: '/api/models/model-u' });
    expect(refused.json().error.hint).toContain('ferry slot unload primary');

    const r = await execa('node', [CLI, 'slot', 'unload', 'primary'], { env: childEnv(h.env), extendEnv: false, reject: false });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toBe('primary: offline (model-u unloaded)');
    expect(isAlive(pid)).toBe(false);
    expect(await readState(slotsDir, 'primary')).toMatchObject({ state: 'offline', pid: null });
    expect((await readSlotConfig(slotsDir, 'primary')).model.default).toBeUndefined();
    expect((await h.app.inject({ method: 'DELETE', url: '/api/models/model-u' })).statusCode).toBe(200);

    const missing = await h.app.inject({ method: 'POST', url: '/api/slots/nope/unload' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('slot.not_found');
  });

  it('stops a backend left by a killed worker: its pid and host are in state.json', async () => {
    await h.workers!.close(); // only the child worker below takes the first job
    await addModel('model-a');
    await addModel('model-b');
    await writeSlot(slotsDir, 'primary');
    const first = spawnWorker(h.env);
    let orphan: number;
    try {
      await first.ready;
      await h.app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'model-a' } });
      const ready = await slotState('primary', ['ready', 'error']);
      expect(ready.state, String(ready.message)).toBe('ready');
      expect(ready.host).toBe(hostname());
      orphan = ready.pid as number;
      pids.push(orphan);
    } finally {
      first.child.kill('SIGKILL'); // no shutdown: its backend is orphaned, still listening
      await first.child;
    }
    expect(isAlive(orphan)).toBe(true);
    await h.startWorker();
    await h.app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'model-b' } });
    const next = await waitFor('model-b ready', async () => {
      const s = await readState(slotsDir, 'primary');
      return (s.state === 'ready' && s.model_id === 'model-b') || s.state === 'error' ? s : undefined;
    });
    expect(next.state, String(next.message)).toBe('ready');
    pids.push(next.pid as number);
    expect(isAlive(orphan)).toBe(false);
    expect(await stateHistory(slotsDir, 'primary')).toEqual(['warming', 'ready', 'unloading', 'warming', 'ready']);
    expect(h.workerLog.join('\n')).toContain(`stopped backend pid ${orphan} started by another worker`);
  });

  it('puts the slot in error with the output lines of a backend that crashes', async () => {
    await addModel('model-a');
    await writeSlot(slotsDir, 'primary', { env: { FAKE_BACKEND_CRASH: '1' } });
    await h.app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'model-a' } });
    const failed = await slotState("primary", ["error", "ready"]).catch(async (e) => { throw new Error(`${e.message}; state ${JSON.stringify(await readState(slotsDir, "primary"))}; log ${h.workerLog.join(" | ")}`); });
    expect(failed.state).toBe('error');
    expect(failed.message).toContain('fake-backend: error: failed to load model: invalid magic');
    expect(failed.message).toContain('exited with code 3');
    expect(await stateHistory(slotsDir, 'primary')).toEqual(['warming', 'error']);
  });

  it('puts the slot in error when the backend never gets healthy, and stops it', async () => {
    await addModel('model-a');
    await writeSlot(slotsDir, 'primary', { backend: 'llama-slow', env: { FAKE_BACKEND_NEVER_HEALTHY: '1', FAKE_BACKEND_PID_FILE: join(h.home, 'slow.pid') } });
    await h.app.inject({ method: 'POST', url: '/api/slots/primary/assign', payload: { model: 'model-a' } });
    const failed = await slotState("primary", ["error", "ready"]).catch(async (e) => { throw new Error(`${e.message}; state ${JSON.stringify(await readState(slotsDir, "primary"))}; log ${h.workerLog.join(" | ")}`); });
    expect(failed.state).toBe('error');
    expect(failed.message).toMatch(/not healthy at http:\/\/127\.0\.0\.1:\d+\/health within 1\.5 s/);
    expect(failed.message).toContain('fake-backend: init step 25');
    expect(isAlive(Number(await readFile(join(h.home, 'slow.pid'), 'utf8')))).toBe(false);
  });

  it('serves an FLM tag with the flm backend template ({model} is the tag)', async () => {
    const dir = join(h.home, 'flm', 'Qwen3-0.6B-NPU2');
    await mkdir(dir, { recursive: true });
    await h.ctx.registry.mutate((d) => d.set({ id: 'qwen3:0.6b', path: dir, capabilities: ['chat'], backends: ['npu'], metadata: { runtime: 'flm' } }));
    await writeSlot(slotsDir, 'npu', { device: 'npu', env: { FAKE_BACKEND_ARGV_FILE: join(h.home, 'argv.json') } });
    const res = await h.app.inject({ method: 'POST', url: '/api/slots/npu/assign', payload: { model: 'qwen3:0.6b' } });
    expect(res.statusCode, res.body).toBe(202);
    const ready = await slotState('npu', ['ready', 'error']);
    expect(ready.state, String(ready.message)).toBe('ready');
    pids.push(ready.pid as number);
    expect(ready.backend).toBe('flm');
    expect(JSON.parse(await readFile(join(h.home, 'argv.json'), 'utf8'))).toEqual(['--model', 'qwen3:0.6b', '--port', String(ready.port)]);
  });
});

describe('swap', () => {
  it('refuses an unservable model with 422 and changes nothing', async () => {
    await writeSlot(slotsDir, 'primary', { model: 'old' });
    const before = await readFile(join(slotsDir, 'primary.toml'), 'utf8');
    const res = await h.app.inject({ method: 'POST', url: '/api/slots/primary/swap', payload: { model: 'qwen3:4b' } });
    expect(res.statusCode, res.body).toBe(422);
    expect(res.json().error.code).toBe('slot.unservable');
    expect(await readFile(join(slotsDir, 'primary.toml'), 'utf8')).toBe(before);
    expect((await readState(slotsDir, 'primary')).state).toBe('offline');
    expect((await h.app.inject('/api/pulls')).json().pulls).toEqual([]);
  });

  it('pulls a missing model, stays pulling while it downloads, verifies it, then warms: offline -> pulling -> warming -> ready', async () => {
    const repo = 'Qwen/Qwen2.5-0.5B-Instruct-GGUF';
    const file = 'qwen2.5-0.5b-instruct-q4_k_m.gguf';
    h.hub.addRepo({ id: repo, files: [{ path: file, size: 1536 * 1024, seed: 11 }] });
    h.hub.fault(repo, file, { kind: 'slow', bytesPerSecond: 1024 * 1024 });
    await writeSlot(slotsDir, 'primary');
    const res = await h.app.inject({ method: 'POST', url: '/api/slots/primary/swap', payload: { model: 'qwen2.5-0.5b-instruct-q4_k_m' } });
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toMatchObject({ action: 'pull', state: 'pulling', model: 'qwen2.5-0.5b-instruct-q4_k_m' });

    // While the (slow) pull runs, the slot is pulling and shows the pull's progress.
    const during = await waitFor('pull progress on the slot', async () => {
      const s = (await h.app.inject('/api/slots/primary')).json();
      return s.pull?.state === 'running' && s.pull.bytes_downloaded > 0 ? s : undefined;
    });
    expect(during).toMatchObject({ state: 'pulling', model_id: 'qwen2.5-0.5b-instruct-q4_k_m', servable: false });
    expect(during.message).toMatch(/^pulling qwen2\.5-0\.5b-instruct-q4_k_m: \d+\.\d%$/);

    const ready = await slotState('primary', ['ready', 'error'], 30_000);
    expect(ready.state, String(ready.message)).toBe('ready');
    pids.push(ready.pid as number);
    expect(await stateHistory(slotsDir, 'primary')).toEqual(['pulling', 'warming', 'ready']);
    const entry = (await h.app.inject('/api/models/qwen2.5-0.5b-instruct-q4_k_m')).json();
    expect(entry.sha256).toBe(await h.hub.sha256(repo, file));
    expect(entry.verified_at).toMatch(/^\d{4}-\d\d-\d\dT/); // the chain's verify ran before the warm
    expect((await readSlotConfig(slotsDir, 'primary')).model.default).toBe('qwen2.5-0.5b-instruct-q4_k_m');
    expect((await h.app.inject('/api/slots/primary')).json()).toMatchObject({ state: 'ready', pull: null, servable: true });
  });

  it('puts the slot in error when the pull fails for good', async () => {
    h.hub.addRepo({ id: 'meta/gated', gated: true, files: [{ path: 'g.gguf', size: 1000, seed: 1 }] });
    await writeSlot(slotsDir, 'primary');
    const res = await h.app.inject({ method: 'POST', url: '/api/slots/primary/swap', payload: { model: 'gated', hf_repo: 'meta/gated', hf_file: 'g.gguf' } });
    expect(res.statusCode, res.body).toBe(202);
    const failed = await slotState("primary", ["error", "ready"]).catch(async (e) => { throw new Error(`${e.message}; state ${JSON.stringify(await readState(slotsDir, "primary"))}; log ${h.workerLog.join(" | ")}`); });
    expect(failed.message).toMatch(/the pull of gated failed: source\.gated/);
    expect(await stateHistory(slotsDir, 'primary')).toEqual(['pulling', 'error']);
  });
});
