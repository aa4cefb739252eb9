/**
 * npm run bench:pull — a Ferry pull (download + verify + fsync + install + registry row) of a
 * 2 GiB file from the fake Hub over loopback, against `curl -o f && sync f` and
 * `curl -o f && sha256sum f` on the same server, alternating, medians of BENCH_RUNS runs.
 * Also samples the worker's RSS. Needs Redis (REDIS_URL or 127.0.0.1:6379).
 * BENCH_RUNS, BENCH_BYTES, BENCH_PIN=1, BENCH_VERBOSE=1 (queue wait and run time per pull),
 * BENCH_CONFIG (a config.toml for the worker), BENCH_NODE_ARGS (node flags for the worker, e.g.
 * `--cpu-prof --cpu-prof-dir=/tmp/prof`) tune it.
 *
 * Then a CDN that caps each connection (BENCH_THROTTLE_BPS, 4 MiB/s): 64 MiB and 1 GiB files
 * (BENCH_THROTTLED_BYTES), Ferry (parallel parts, verified and installed) against
 * `aria2c -x8 -s8` (which verifies nothing), alternating, medians of BENCH_THROTTLED_RUNS runs.
 * BENCH_THROTTLED_BYTES= (empty) skips that part; aria2c comes from Debian's aria2.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa } from 'execa';
import { FerryContext } from '../src/app/create-context.js';
import { loadConfig } from '../src/config/load-config.js';
import { dropPrefix } from '../test/support/pull-harness.js';
import { REPO_ROOT } from '../test/support/worker-process.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 5);
/**
 * On loopback the Hub stand-in would compete with the client for the same two cores, which a
 * remote Hub never does: pin it to CPU 0 and the client side (Ferry's worker, or curl, sync and
 * sha256sum) to CPU 1, the same for both, with BENCH_PIN=1. Off by default: Ferry hashes on its main thread and writes from libuv's pool, so it uses both cores where curl needs one.
 */
const PIN = process.env.BENCH_PIN === '1' && (await execa('taskset', ['-c', '0', 'true'], { reject: false })).exitCode === 0;
const onCpu = (cpu: number, cmd: string, args: string[]): [string, string[]] => (PIN ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args]);
const BYTES = Number(process.env.BENCH_BYTES ?? 2 * 1024 ** 3);
const benchDir = await mkdtemp(join(REPO_ROOT, '.bench-pull-'));

const THROTTLED_BYTES = process.env.BENCH_THROTTLED_BYTES ?? `${64 * 1024 ** 2},${1024 ** 3}`;
const THROTTLED_RUNS = Number(process.env.BENCH_THROTTLED_RUNS ?? 3);
const hasAria2 = (await execa('aria2c', ['--version'], { reject: false })).exitCode === 0;
if (THROTTLED_BYTES && !hasAria2) process.stderr.write('aria2c not found (apt-get install aria2): the throttled comparison is skipped\n');
const hub = execa(...onCpu(0, 'node', [join(REPO_ROOT, 'dist/bench/fake-hub-process.js')]), {
  env: { BENCH_BYTES: String(BYTES), BENCH_THROTTLED_BYTES: hasAria2 ? THROTTLED_BYTES : '', BENCH_THROTTLE_BPS: process.env.BENCH_THROTTLE_BPS ?? String(4 * 1024 ** 2) },
  buffer: false,
});
interface Throttled {
  repo: string;
  file: string;
  bytes: number;
  sha256: string;
}
const info = await new Promise<{ url: string; repo: string; file: string; sha256: string; throttled: Throttled[]; throttleBps: number }>((resolve) => {
  createInterface({ input: hub.stdout! }).once('line', (line) => resolve(JSON.parse(line)));
});
const env = {
  FERRY_HOME: join(benchDir, 'home'),
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  FERRY_QUEUE_PREFIX: `{ferry-bench-${randomBytes(3).toString('hex')}}`,
  HF_ENDPOINT: info.url,
};
await execa('mkdir', ['-p', env.FERRY_HOME]);
await writeFile(join(env.FERRY_HOME, 'config.toml'), process.env.BENCH_CONFIG ?? '');
const workerNodeArgs = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean);
const worker = execa(...onCpu(1, 'node', [...workerNodeArgs, join(REPO_ROOT, 'dist/workers/pull.js')]), { env: { ...process.env, ...env }, buffer: false, stderr: 'pipe' });
await new Promise<void>((resolve) => worker.stderr!.on('data', (d: Buffer) => d.toString().includes('taking jobs') && resolve()));
const ctx = new FerryContext(loadConfig(env));
const pulls = await ctx.pulls();
const pullQueue = await ctx.pullQueueStore();
const { QueueEvents } = await import('bullmq');
const queueEvents = new QueueEvents('pull', { connection: { url: env.REDIS_URL }, prefix: env.FERRY_QUEUE_PREFIX });
await queueEvents.waitUntilReady();
const resolveUrl = `${info.url}/${info.repo}/resolve/main/${info.file}`;

let peakRss = 0;
const rssTimer = setInterval(async () => {
  const status = await readFile(`/proc/${worker.pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  peakRss = Math.max(peakRss, kb * 1024);
}, 100);

async function ferryPull(i: number, repo = info.repo, file = info.file, sha256 = info.sha256): Promise<number> {
  const id = `bench-${i}`;
  const t0 = performance.now();
  const started = await pulls.start(id, { hf_repo: repo, hf_file: file });
  // Wait on BullMQ's event stream (a blocking read), not by polling: polling Redis every few ms
  // would take CPU from the very processes being timed on this 2-core machine.
  const job = await pullQueue.getJob(started.id!);
  await job!.waitUntilFinished(queueEvents);
  const ms = performance.now() - t0;
  const done = (await pullQueue.getJob(started.id!))!;
  if (process.env.BENCH_VERBOSE) process.stderr.write(`  queued ${done.processedOn! - done.timestamp} ms, ran ${done.finishedOn! - done.processedOn!} ms\n`);
  const s = await pulls.status(id);
  if (s.state !== 'completed') throw new Error(`pull failed: ${s.error}`);
  const entry = await ctx.models.get(id);
  if (entry.sha256 !== sha256) throw new Error('digest mismatch');
  await ctx.models.remove(id);
  return ms;
}

async function curlThen(cmd: string[], name: string): Promise<number> {
  const file = join(benchDir, name);
  const t0 = performance.now();
  await execa(...onCpu(1, 'curl', ['-s', '-f', '-L', '-o', file, resolveUrl]));
  await execa(...onCpu(1, cmd[0], [...cmd.slice(1), file]));
  const ms = performance.now() - t0;
  await rm(file);
  return ms;
}

/** aria2c with 8 connections, as fast as it goes (no verification, no install). */
async function aria2(t: Throttled): Promise<number> {
  const name = 'aria2-out';
  const t0 = performance.now();
  await execa(...onCpu(1, 'aria2c', ['-x8', '-s8', '-k1M', '--file-allocation=none', '--allow-overwrite=true', '--auto-file-renaming=false', '-q', '-d', benchDir, '-o', name, `${info.url}/${t.repo}/resolve/main/${t.file}`]));
  const ms = performance.now() - t0;
  await rm(join(benchDir, name));
  return ms;
}

/** Before every timed run, the same for all three: flush the last run's writes and let the disk settle. */
async function settle(): Promise<void> {
  await execa('sync');
  await new Promise((r) => setTimeout(r, 1500));
}

const times = { ferry: [] as number[], curlSync: [] as number[], curlSha: [] as number[] };
const capped: Array<{ size: number; ferry: number[]; aria2: number[] }> = [];
try {
  for (let i = 1; i <= RUNS; i++) {
    await settle();
    times.curlSync.push(await curlThen(['sync'], 'curl-sync'));
    await settle();
    times.ferry.push(await ferryPull(i));
    await settle();
    times.curlSha.push(await curlThen(['sha256sum'], 'curl-sha'));
    process.stderr.write(`run ${i}/${RUNS}: ferry ${fmt(times.ferry.at(-1)!)}  curl+sync ${fmt(times.curlSync.at(-1)!)}  curl+sha256sum ${fmt(times.curlSha.at(-1)!)}\n`);
  }
  for (const t of info.throttled) {
    const row = { size: t.bytes, ferry: [] as number[], aria2: [] as number[] };
    capped.push(row);
    for (let i = 1; i <= THROTTLED_RUNS; i++) {
      await settle();
      row.aria2.push(await aria2(t));
      await settle();
      row.ferry.push(await ferryPull(1000 + i, t.repo, t.file, t.sha256));
      process.stderr.write(`capped ${(t.bytes / 1024 ** 2).toFixed(0)} MiB run ${i}/${THROTTLED_RUNS}: ferry ${fmt(row.ferry.at(-1)!)}  aria2c -x8 ${fmt(row.aria2.at(-1)!)}\n`);
    }
  }
} finally {
  clearInterval(rssTimer);
  worker.kill('SIGTERM');
  await worker.catch(() => undefined);
  hub.kill('SIGTERM');
  await hub.catch(() => undefined);
  await queueEvents.close();
  await dropPrefix(env.FERRY_QUEUE_PREFIX);
  await ctx.close();
  await rm(benchDir, { recursive: true, force: true });
}

const m = { ferry: median(times.ferry), curlSync: median(times.curlSync), curlSha: median(times.curlSha) };
const gib = BYTES / 1024 ** 3;
console.log(`\npull of ${gib.toFixed(2)} GiB over loopback, median of ${RUNS} runs each (alternating)${PIN ? '; fake Hub on CPU 0, client side on CPU 1' : ''}\n`);
console.log(table([
  ['', 'median', 'throughput', 'ratio vs Ferry', 'target'],
  ['Ferry pull (download+sha256+fsync+install+row)', fmt(m.ferry), rate(m.ferry), '1.00', ''],
  ['curl -o f && sync f', fmt(m.curlSync), rate(m.curlSync), (m.ferry / m.curlSync).toFixed(2), 'Ferry <= 1.15x'],
  ['curl -o f && sha256sum f', fmt(m.curlSha), rate(m.curlSha), (m.ferry / m.curlSha).toFixed(2), 'Ferry < 1.00x'],
  ['worker peak RSS', `${(peakRss / 1024 ** 2).toFixed(0)} MB`, '', '', '< 300 MB (8 connections)'],
]));
let ok = m.ferry <= 1.15 * m.curlSync && m.ferry < m.curlSha && peakRss < 300 * 1024 ** 2;
if (capped.length > 0) {
  console.log(`\na CDN capping each connection at ${(info.throttleBps / 1024 ** 2).toFixed(0)} MiB/s, median of ${THROTTLED_RUNS} runs each (alternating)\n`);
  const rows = [['file', 'Ferry (8 parts, verified, installed)', 'aria2c -x8 -s8', 'Ferry / aria2c', 'target']];
  for (const row of capped) {
    const [f, a] = [median(row.ferry), median(row.aria2)];
    rows.push([`${(row.size / 1024 ** 2).toFixed(0)} MiB`, fmt(f), fmt(a), (f / a).toFixed(2), '<= 1.10']);
    ok &&= f <= 1.1 * a;
  }
  console.log(table(rows));
}
console.log(ok ? 'all targets met' : 'TARGET MISSED');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
function fmt(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}
function rate(ms: number): string {
  return `${(BYTES / 1024 ** 2 / (ms / 1000)).toFixed(0)} MiB/s`;
}
function table(rows: string[][]): string {
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(w[i])).join('  ')).join('\n');
}
