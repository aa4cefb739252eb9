/**
 * npm run bench:registry — the registry at 10,000 realistic rows (~5 MB of TOML):
 *   GET /api/models over a real listening server, cache warm (peer: curl of the same request);
 *   adding one row (locked rewrite) in a warm process, and in a fresh process;
 *   `ferry model list` wall time as a child process (peer: `cat registry.toml > /dev/null`).
 * Medians of BENCH_RUNS runs (default 9). Needs Redis for the server (REDIS_URL or 127.0.0.1:6379).
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { Agent } from 'node:http';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { buildApp } from '../src/api/build-app.js';
import { FerryContext } from '../src/app/create-context.js';
import { loadConfig } from '../src/config/load-config.js';
import { realisticEntry } from '../test/support/realistic-entry.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 9);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const MAIN = join(REPO_ROOT, 'dist/src/cli/main.js');
const COLD_ADD = join(REPO_ROOT, 'dist/bench/registry-cold-add.js');

const benchDir = await mkdtemp(join(REPO_ROOT, '.bench-registry-'));
const env = {
  FERRY_HOME: join(benchDir, 'home'),
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  FERRY_QUEUE_PREFIX: `{ferry-bench-${randomBytes(3).toString('hex')}}`,
  HF_HOME: join(benchDir, 'hf'),
};
const childEnv = { ...process.env, ...env };
const config = loadConfig(env);
const ctx = new FerryContext(config);
const registryFile = join(config.registryDir, 'registry.toml');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function times(n: number, fn: (i: number) => Promise<number | void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    const reported = await fn(i);
    out.push(typeof reported === 'number' ? reported : performance.now() - t0);
  }
  return out;
}

async function stageFile(name: string): Promise<string> {
  const path = join(config.modelRoot, 'staged', name);
  await writeFile(path, randomBytes(64 * 1024));
  return path;
}

const rows: Array<[string, string, string, string]> = [];
const report = (what: string, ms: number, target: string, peer = '') => rows.push([what, `${ms.toFixed(1)} ms`, target, peer]);

try {
  await mkdir(join(config.modelRoot, 'staged'), { recursive: true });
  process.stderr.write(`writing ${ROWS} rows... `);
  await ctx.registry.mutate((draft) => {
    for (let i = 0; i < ROWS; i++) draft.set(realisticEntry(i, config.modelRoot));
  });
  const size = (await stat(registryFile)).size;
  process.stderr.write(`${(size / 1e6).toFixed(1)} MB\n`);

  // GET /api/models over a real listening server, cache warm.
  const app = await buildApp({ services: await ctx.apiServices() });
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  const url = `${address}/api/models`;
  const agent = new Agent({ keepAlive: true });
  const get = () =>
    new Promise<number>((resolve, reject) => {
      const req = request(url, { agent }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => (res.statusCode === 200 ? resolve(bytes) : reject(new Error(`status ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end();
    });
  const bodyBytes = await get(); // warm: parse + first serialisation
  await get();
  const apiMs = median(await times(RUNS * 2, () => get().then(() => undefined)));
  const curlMs = median(
    await times(RUNS, async () => Number((await execa('curl', ['-s', '-o', '/dev/null', '-w', '%{time_total}', url])).stdout) * 1000),
  );
  const curlWall = median(await times(RUNS, async () => void (await execa('curl', ['-s', '-o', '/dev/null', url]))));
  report(`GET /api/models, warm (${(bodyBytes / 1e6).toFixed(1)} MB body)`, apiMs, '< 20 ms', `curl time_total ${curlMs.toFixed(1)} ms; curl wall ${curlWall.toFixed(1)} ms`);
  agent.destroy();
  await app.close();

  // One row added in a warm process (the store has the snapshot and every row's TOML).
  await ctx.models.list();
  const warmAdd = median(await times(RUNS, async (i) => void (await ctx.models.add({ id: `bench-warm-${i}`, path: await stageFile(`warm-${i}.gguf`) }))));
  report('add one row (ModelService.add, 64 KiB file), warm process', warmAdd, '< 150 ms');
  const warmMutate = median(await times(RUNS, (i) => ctx.registry.mutate((d) => d.set({ id: `bench-mutate-${i}`, path: `/m/${i}` })).then(() => undefined)));
  report('  of which: RegistryStore.mutate alone', warmMutate, '< 150 ms');

  // In a fresh process: reads the sidecar cache (or parses 5 MB of TOML without it).
  const coldAdd = async (tag: string) =>
    median(await times(RUNS, async (i) => Number((await execa('node', [COLD_ADD, `bench-${tag}-${i}`, await stageFile(`${tag}-${i}.gguf`)], { env: childEnv })).stdout)));
  report('add one row, fresh process (start-up excluded)', await coldAdd('cold'), 'report', 'with the sidecar cache');
  const cliAdd = median(
    await times(RUNS, async (i) => void (await execa('node', [MAIN, 'model', 'add', `bench-cli-${i}`, '--path', await stageFile(`cli-${i}.gguf`)], { env: childEnv }))),
  );
  report('`ferry model add` wall', cliAdd, 'report');

  // `ferry model list` as a child process.
  const list = (...args: string[]) => times(RUNS, async () => void (await execa('node', [MAIN, 'model', 'list', ...args], { env: childEnv, stdout: 'ignore' })));
  const catMs = median(await times(RUNS, async () => void (await execa('sh', ['-c', `cat '${registryFile}' > /dev/null`]))));
  const nodeMs = median(await times(RUNS, async () => void (await execa('node', ['-e', '0']))));
  report('`ferry model list` wall', median(await list()), '< 500 ms', `cat registry.toml ${catMs.toFixed(1)} ms; node -e 0 ${nodeMs.toFixed(1)} ms`);
  report('`ferry model list --json` wall', median(await list('--json')), '< 500 ms');
  // Without the sidecar (first run after a hal0 edit): the 5 MB of TOML is parsed.
  await rm(join(config.registryDir, '.registry.toml.cache.json'));
  report('`ferry model list` wall, no sidecar (after a hal0 edit)', median(await list()), 'report');
  report('add one row, fresh process, no sidecar', await coldAdd('nocache'), 'report', 'parse; unchanged rows kept as written, each checked by a parse of its own');
} finally {
  await ctx.close();
  await rm(benchDir, { recursive: true, force: true });
}

const widths = [0, 1, 2, 3].map((c) => Math.max(...rows.map((r) => r[c].length), ['what', 'median', 'target', 'peer'][c].length));
const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd();
process.stdout.write(`registry: ${ROWS} rows, medians of ${RUNS} runs\n`);
process.stdout.write(`${line(['what', 'median', 'target', 'peer'])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
for (const r of rows) process.stdout.write(`${line(r)}\n`);
