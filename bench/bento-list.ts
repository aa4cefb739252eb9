/**
 * Listing a file registry in BentoML's layout: 5,000 versions across 500 names, read straight from
 * the filesystem (every model.yaml parsed), against `find | xargs cat` reading the same files as
 * the floor any lister has to pay. Target: under 500 ms. Run: `npm run bench:bento`.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { execa } from 'execa';
import { BentoStore } from '../src/bento/bento-store.js';
import { buildModelYaml } from '../src/bento/model-yaml.js';
import { newBentoVersionId } from '../src/bento/bento-version-id.js';

const NAMES = 500;
const VERSIONS_PER_NAME = 10;
const RUNS = 7;
const TARGET_MS = 500;

async function populate(root: string): Promise<void> {
  const start = Date.UTC(2026, 0, 1);
  for (let n = 0; n < NAMES; n++) {
    const name = `model-${n}`;
    const writes: Promise<void>[] = [];
    let latest = '';
    for (let v = 0; v < VERSIONS_PER_NAME; v++) {
      const version = newBentoVersionId(start + (n * VERSIONS_PER_NAME + v) * 1000);
      latest = version;
      const dir = join(root, 'models', name, version);
      const yaml = buildModelYaml({
        name,
        version,
        module: 'transformers',
        labels: { owner: 'bench', stage: v % 2 ? 'prod' : 'dev' },
        metadata: { params: '7b', quant: 'q4_k_m' },
        size: '4.2GB',
        creationTime: new Date(start + (n * VERSIONS_PER_NAME + v) * 1000),
      });
      writes.push(mkdir(dir, { recursive: true }).then(() => writeFile(join(dir, 'model.yaml'), yaml)));
    }
    await Promise.all(writes);
    await writeFile(join(root, 'models', name, 'latest'), latest);
  }
}

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const root = await mkdtemp(join(tmpdir(), 'ferry-bench-bento-'));
try {
  const t0 = performance.now();
  await populate(root);
  console.log(`created ${NAMES * VERSIONS_PER_NAME} versions across ${NAMES} names in ${(performance.now() - t0).toFixed(0)} ms`);

  const store = new BentoStore(root);
  const ours: number[] = [];
  const peer: number[] = [];
  let count = 0;
  // Interleaved so both see the same page-cache state and machine load.
  for (let i = 0; i < RUNS; i++) {
    ours.push(await time(async () => (count = (await store.list()).length)));
    peer.push(await time(() => execa('sh', ['-c', `find "${root}" -name model.yaml | xargs cat > /dev/null`])));
  }
  if (count !== NAMES * VERSIONS_PER_NAME) throw new Error(`listed ${count} versions, expected ${NAMES * VERSIONS_PER_NAME}`);
  const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)}, ${RUNS} runs)`;
  console.log(`ferry BentoStore.list (readdir + parse every model.yaml, sort): ${fmt(ours)}`);
  console.log(`peer: find -name model.yaml | xargs cat > /dev/null:           ${fmt(peer)}`);
  const m = median(ours);
  console.log(`target < ${TARGET_MS} ms: ${m < TARGET_MS ? 'met' : 'MISSED'} (${m.toFixed(0)} ms; ${(m / median(peer)).toFixed(2)}x the peer)`);
} finally {
  await rm(root, { recursive: true, force: true });
}
