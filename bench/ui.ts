/**
 * npm run bench:ui — the dashboard with 10,000 registry rows in headless Chromium (Debian's):
 * time from navigation to the Models table showing its first rows, median of BENCH_RUNS (5) fresh
 * browser profiles; peer: Chromium navigating to the raw GET /api/models JSON (the data alone).
 * Also the page's JavaScript, gzipped. Needs Redis (REDIS_URL or 127.0.0.1:6379).
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { buildApp } from '../src/api/build-app.js';
import { FerryContext } from '../src/app/create-context.js';
import { loadConfig } from '../src/config/load-config.js';
import { realisticEntry } from '../test/support/realistic-entry.js';
import { launchChromium } from '../test/support/browser.js';
import { dropPrefix } from '../test/support/pull-harness.js';

const ROWS = Number(process.env.BENCH_ROWS ?? 10_000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WEB = join(REPO_ROOT, 'dist/web');

const benchDir = await mkdtemp(join(REPO_ROOT, '.bench-ui-'));
const env = {
  FERRY_HOME: join(benchDir, 'home'),
  REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
  FERRY_QUEUE_PREFIX: `{ferry-bench-${randomBytes(3).toString('hex')}}`,
  HF_HOME: join(benchDir, 'hf'),
};
const config = loadConfig(env);
const ctx = new FerryContext(config);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  await ctx.registry.mutate((draft) => {
    for (let i = 0; i < ROWS; i++) draft.set(realisticEntry(i, config.modelRoot));
  });
  const app = await buildApp({ services: await ctx.apiServices() });
  const base = await app.listen({ port: 0, host: '127.0.0.1' });
  const page: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    for (const [what, out] of [['page', page], ['raw', raw]] as const) {
      const session = await launchChromium();
      const tab = await session.context.newPage();
      const t0 = performance.now();
      if (what === 'page') {
        await tab.goto(`${base}/`, { waitUntil: 'commit' });
        await tab.getByRole('region', { name: 'Models' }).locator('tbody tr').first().waitFor({ timeout: 30_000 });
        const shown = await tab.getByRole('region', { name: 'Models' }).getByText(`of ${ROWS} models`).count();
        if (!shown) throw new Error('the table did not count every row');
      } else {
        await tab.goto(`${base}/api/models`, { waitUntil: 'load' });
      }
      out.push(performance.now() - t0);
      await session.close();
    }
  }
  let js = 0;
  for (const name of await readdir(join(WEB, 'assets'))) if (name.endsWith('.js')) js += gzipSync(await readFile(join(WEB, 'assets', name))).length;
  const p = median(page);
  const r = median(raw);
  console.log(`dashboard, ${ROWS} rows, headless Chromium, medians of ${RUNS} fresh profiles`);
  console.log(`navigation -> first Models rows: ${p.toFixed(0)} ms (target < 1000 ms: ${p < 1000 ? 'met' : 'NOT met'}); runs ${page.map((x) => x.toFixed(0)).join(', ')}`);
  console.log(`peer, navigation -> raw /api/models JSON loaded: ${r.toFixed(0)} ms; ratio page/raw ${(p / r).toFixed(2)}`);
  console.log(`page JavaScript gzipped: ${(js / 1024).toFixed(1)} KB (target < 150 KB: ${js < 150 * 1024 ? 'met' : 'NOT met'})`);
  await app.close();
} finally {
  await ctx.close();
  await dropPrefix(config.queuePrefix);
  await rm(benchDir, { recursive: true, force: true });
}
