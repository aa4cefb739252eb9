/**
 * npm run bench:mirror — Ferry's Hub mirror (/hub) against peers in the same run, medians of
 * BENCH_RUNS runs (default 3), each figure a ratio:
 * - warm: a 2 GiB file Ferry holds, `curl -o /dev/null` from /hub against nginx (Debian's, run
 *   here as our own process on a loopback port) serving the same file;
 * - cold, one client: a file Ferry lacks, pulled through, against the same curl straight from the
 *   fake Hub (following its CDN redirect), each on a fresh file of BENCH_COLD_BYTES (1 GiB);
 * - cold, five clients at once on one fresh file against one client on another: wall time.
 * Ferry runs as `ferry serve` (API + one worker); the fake Hub in a process of its own.
 * Needs Redis (REDIS_URL or 127.0.0.1:6379), curl and nginx (apt-get install nginx).
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { execa, type ResultPromise } from 'execa';
import { dropPrefix } from '../test/support/pull-harness.js';
import { REPO_ROOT } from '../test/support/worker-process.js';

const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WARM_RUNS = Number(process.env.BENCH_WARM_RUNS ?? 5);
const WARM_BYTES = Number(process.env.BENCH_WARM_BYTES ?? 2 * 1024 ** 3);
const COLD_BYTES = Number(process.env.BENCH_COLD_BYTES ?? 1024 ** 3);
const benchDir = await mkdtemp(join(REPO_ROOT, '.bench-mirror-'));
const children: ResultPromise[] = [];

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(url: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fetch(url).then((r) => r.status < 500, () => false)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms`);
}

/** One curl to /dev/null; resolves with seconds of wall time, after checking it got every byte. */
async function curl(url: string, bytes: number, follow = false): Promise<number> {
  const t0 = performance.now();
  const r = await execa('curl', ['-sS', ...(follow ? ['-L'] : []), '-o', '/dev/null', '-w', '%{http_code} %{size_download}', url]);
  const s = (performance.now() - t0) / 1000;
  const [code, size] = r.stdout.split(' ');
  if (!['200', '206'].includes(code) || Number(size) !== bytes) throw new Error(`curl ${url}: ${r.stdout}`);
  return s;
}

const median = (xs: number[]) => (xs.length ? [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] : NaN);
const mbps = (bytes: number, s: number) => bytes / s / 1e6;

const hub = execa('node', [join(REPO_ROOT, 'dist/bench/mirror-hub-process.js')], { env: { BENCH_WARM_BYTES: String(WARM_BYTES), BENCH_COLD_BYTES: String(COLD_BYTES), BENCH_RUNS: String(RUNS) }, buffer: false });
children.push(hub);
const info = await new Promise<{ url: string; repo: string }>((resolve) => createInterface({ input: hub.stdout! }).once('line', (l) => resolve(JSON.parse(l))));
const port = await freePort();
const env = {
  FERRY_HOME: join(benchDir, 'home'),
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  FERRY_QUEUE_PREFIX: `{ferry-bench-mirror-${randomBytes(3).toString('hex')}}`,
  HF_ENDPOINT: info.url,
  PORT: String(port),
  HOST: '127.0.0.1',
};
await mkdir(env.FERRY_HOME, { recursive: true });
await writeFile(join(env.FERRY_HOME, 'config.toml'), process.env.BENCH_CONFIG ?? 'mirror_max_streams_per_client = 16\n');
const ferry = execa('node', [join(REPO_ROOT, 'dist/src/cli/main.js'), 'serve'], { env: { ...process.env, ...env, LOG_LEVEL: 'warn' }, buffer: false, stdout: 'ignore', stderr: 'inherit' });
children.push(ferry);
const base = `http://127.0.0.1:${port}`;
const fileUrl = (path: string) => `${base}/hub/${info.repo}/resolve/main/${path}`;
const blobs = join(env.FERRY_HOME, 'models', '.ferry-mirror', 'blobs');

try {
  await waitFor(`${base}/healthz`);
  // Cold, one client: through Ferry against straight from the Hub, a fresh file each.
  const coldFerry: number[] = [];
  const coldDirect: number[] = [];
  const five: number[] = [];
  const one: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    coldDirect.push(await curl(`${info.url}/${info.repo}/resolve/main/direct-one-${i}.gguf`, COLD_BYTES, true));
    one.push(await curl(fileUrl(`ferry-one-${i}.gguf`), COLD_BYTES));
    coldFerry.push(one[i]);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 5 }, () => curl(fileUrl(`ferry-five-${i}.gguf`), COLD_BYTES)));
    five.push((performance.now() - t0) / 1000);
    // Keep the disk free for the next run; the warm file is fetched below.
    for (const name of await readdir(blobs).catch(() => [])) await rm(join(blobs, name), { force: true });
  }

  // Warm: the 2 GiB file pulled through once (not timed), then Ferry and nginx alternately.
  await curl(fileUrl('warm.gguf'), WARM_BYTES);
  const [warmBlob] = (await readdir(blobs)).filter((n) => /^[0-9a-f]{64}$/.test(n));
  const nginxPort = await freePort();
  const nginxDir = join(benchDir, 'nginx');
  await mkdir(join(nginxDir, 'logs'), { recursive: true });
  await writeFile(
    join(nginxDir, 'nginx.conf'),
    `user root; worker_processes 1; pid ${nginxDir}/nginx.pid; error_log ${nginxDir}/logs/error.log;
events { worker_connections 64; }
http { access_log off; sendfile on; tcp_nopush on; client_body_temp_path ${nginxDir}/tmp; proxy_temp_path ${nginxDir}/tmp; fastcgi_temp_path ${nginxDir}/tmp; uwsgi_temp_path ${nginxDir}/tmp; scgi_temp_path ${nginxDir}/tmp;
  server { listen 127.0.0.1:${nginxPort}; root ${blobs}; } }
`,
  );
  const nginx = execa('nginx', ['-p', nginxDir, '-c', join(nginxDir, 'nginx.conf'), '-g', 'daemon off;'], { buffer: false, stderr: 'inherit' });
  children.push(nginx);
  await waitFor(`http://127.0.0.1:${nginxPort}/`);
  const warmFerry: number[] = [];
  const warmNginx: number[] = [];
  await curl(`http://127.0.0.1:${nginxPort}/${warmBlob}`, WARM_BYTES); // page cache warm for both
  for (let i = 0; i < WARM_RUNS; i++) {
    warmFerry.push(await curl(fileUrl('warm.gguf'), WARM_BYTES));
    warmNginx.push(await curl(`http://127.0.0.1:${nginxPort}/${warmBlob}`, WARM_BYTES));
  }

  const rows = [
    ['warm 2 GiB, Ferry /hub vs nginx', mbps(WARM_BYTES, median(warmFerry)), mbps(WARM_BYTES, median(warmNginx)), median(warmNginx) / median(warmFerry), '>= 0.9 (throughput)'],
    ['cold pull-through, one client vs straight from the Hub', mbps(COLD_BYTES, median(coldFerry)), mbps(COLD_BYTES, median(coldDirect)), median(coldDirect) / median(coldFerry), '>= 0.9 (throughput)'],
    ['cold, five clients at once vs one (wall time)', median(five), median(one), median(five) / median(one), '<= 1.2 (wall time)'],
  ] as const;
  process.stdout.write(`bench:mirror, medians of ${RUNS} cold runs (${COLD_BYTES / 1024 ** 2} MiB fresh files) and ${WARM_RUNS} warm runs (${WARM_BYTES / 1024 ** 2} MiB)\n`);
  for (const [name, a, b, ratio, goal] of rows) {
    const unit = name.includes('wall') ? 's' : 'MB/s';
    process.stdout.write(`  ${name}: ${a.toFixed(unit === 's' ? 2 : 0)} ${unit} vs ${b.toFixed(unit === 's' ? 2 : 0)} ${unit}: ratio ${ratio.toFixed(2)} (goal ${goal})\n`);
  }
  if (process.env.BENCH_VERBOSE) process.stdout.write(JSON.stringify({ warmFerry, warmNginx, coldFerry, coldDirect, five, one }) + '\n');
} finally {
  for (const child of children.reverse()) {
    child.kill('SIGTERM');
    await child.catch(() => undefined);
  }
  await dropPrefix(env.FERRY_QUEUE_PREFIX);
  await rm(benchDir, { recursive: true, force: true });
}
