import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { acquireFileLock } from '../../src/stores/file-lock.js';
import { ModelService } from '../../src/services/model-service.js';
import { RegistryTransferService } from '../../src/services/registry-transfer-service.js';

const LIMITS = { maxBytes: 1 << 30, maxEntries: 1000 };

interface Machine {
  root: string;
  modelRoot: string;
  registry: RegistryStore;
  models: ModelService;
  transfer: RegistryTransferService;
}

let work: string;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-transfer-'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

function machine(name: string): Machine {
  const root = join(work, name);
  const modelRoot = join(root, 'models');
  const registry = new RegistryStore(join(root, 'registry'));
  const models = new ModelService({ registry, modelRoot, pullRoot: join(modelRoot, 'local') });
  return { root, modelRoot, registry, models, transfer: new RegistryTransferService({ registry, models, modelRoot, limits: LIMITS }) };
}

const exists = (p: string) => stat(p).then(() => true, () => false);
const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** Machine A: one pre-staged gguf, one copied in, one multi-file row (a directory plus shards). */
async function populate(a: Machine): Promise<void> {
  await mkdir(join(a.modelRoot, 'staged'), { recursive: true });
  await writeFile(join(a.modelRoot, 'staged', 'tiny.gguf'), Buffer.alloc(400_000, 1));
  await a.models.add({ id: 'tiny', path: join(a.modelRoot, 'staged', 'tiny.gguf') });
  await writeFile(join(work, 'outside.gguf'), Buffer.alloc(300_000, 2));
  await a.models.add({ id: 'copied', path: join(work, 'outside.gguf'), copy: true });
  const dir = join(a.modelRoot, 'local', 'sharded');
  await mkdir(dir, { recursive: true });
  const s1 = Buffer.alloc(200_000, 3);
  const s2 = Buffer.alloc(100_000, 4);
  await writeFile(join(dir, 'a.safetensors'), s1);
  await writeFile(join(dir, 'b.safetensors'), s2);
  await a.registry.mutate((d) =>
    d.set({
      id: 'sharded',
      path: dir,
      files: [
        { path: join(dir, 'a.safetensors'), sha256: sha(s1), size_bytes: s1.length },
        { path: join(dir, 'b.safetensors'), sha256: sha(s2), size_bytes: s2.length },
      ],
      metadata: { runtime: 'vllm', x_unknown: 'kept' },
    }),
  );
}

describe('ferry registry export / import', () => {
  it('moves rows and weights to another machine, byte-identical, paths rewritten', async () => {
    const a = machine('a');
    const b = machine('b');
    await populate(a);
    const out = join(work, 'reg.tar');
    const result = await a.transfer.exportTo(out);
    expect(result).toMatchObject({ rows: 3, files: 4 });
    const summary = await b.transfer.importFrom(out);
    expect(summary.added.sort()).toEqual(['copied', 'sharded', 'tiny']);
    for (const id of ['tiny', 'copied']) {
      const [ra, rb] = [await a.models.get(id), await b.models.get(id)];
      expect(rb.path.startsWith(b.modelRoot)).toBe(true);
      expect(rb.path.slice(b.modelRoot.length)).toBe(ra.path.slice(a.modelRoot.length));
      expect(sha(await readFile(rb.path))).toBe(ra.sha256);
    }
    const sharded = await b.models.get('sharded');
    expect(sharded.metadata).toEqual({ runtime: 'vllm', x_unknown: 'kept' });
    for (const f of sharded.files!) expect(sha(await readFile(f.path))).toBe(f.sha256);
    expect((await readdir(b.modelRoot)).filter((n) => n.startsWith('.ferry'))).toEqual([]);
  });

  it('skips existing ids unless --replace', async () => {
    const a = machine('a');
    const b = machine('b');
    await populate(a);
    const out = join(work, 'reg.tar');
    await a.transfer.exportTo(out);
    await b.transfer.importFrom(out);
    await b.models.update('tiny', { tags: ['local-edit'] });
    const again = await b.transfer.importFrom(out);
    expect(again.skipped.sort()).toEqual(['copied', 'sharded', 'tiny']);
    expect((await b.models.get('tiny')).tags).toEqual(['local-edit']);
    const replaced = await b.transfer.importFrom(out, { replace: true });
    expect(replaced.replaced.sort()).toEqual(['copied', 'sharded', 'tiny']);
    expect((await b.models.get('tiny')).tags).toBeUndefined();
  });

  it('a file whose sha256 does not match is refused and the registry is unchanged', async () => {
    const a = machine('a');
    const b = machine('b');
    await populate(a);
    const out = join(work, 'reg.tar');
    await a.transfer.exportTo(out);
    // Tamper with one shard inside the archive, with GNU tar, as a corrupted transfer would.
    const x = join(work, 'x');
    await mkdir(x);
    await execa('tar', ['-C', x, '-xf', out]);
    await writeFile(join(x, 'weights/local/sharded/b.safetensors'), Buffer.alloc(100_000, 9));
    const bad = join(work, 'bad.tar');
    await execa('tar', ['-C', x, '-cf', bad, '.']);
    await b.models.add({ id: 'already', path: join(work, 'outside.gguf'), copy: true });
    const before = await readFile(b.registry.file, 'utf8');
    const beforeFiles = (await readdir(b.modelRoot, { recursive: true })).sort();
    await expect(b.transfer.importFrom(bad)).rejects.toMatchObject({ code: 'registry.import_invalid' });
    expect(await readFile(b.registry.file, 'utf8')).toBe(before);
    expect((await readdir(b.modelRoot, { recursive: true })).sort()).toEqual(beforeFiles);
  });

  it('a failure at the registry write moves every file back out', async () => {
    const a = machine('a');
    const b = machine('b');
    await populate(a);
    const out = join(work, 'reg.tar');
    await a.transfer.exportTo(out);
    // Hold B's registry lock (as another Ferry process would), let the import move its files in,
    // then break registry.toml before letting go: the import's one write fails after the moves.
    await mkdir(b.registry.dir, { recursive: true });
    const release = await acquireFileLock(b.registry.lockPath);
    const pending = b.transfer.importFrom(out).catch((e: unknown) => e);
    const lastMoved = join(b.modelRoot, 'local', 'sharded', 'b.safetensors');
    for (let i = 0; i < 600 && !(await exists(lastMoved)); i++) await sleep(25);
    expect(await exists(lastMoved)).toBe(true);
    await writeFile(b.registry.file, '[models.broken\n');
    await release();
    expect(await pending).toMatchObject({ code: 'registry.corrupt' });
    expect(await readFile(b.registry.file, 'utf8')).toBe('[models.broken\n');
    expect(await readdir(b.modelRoot, { recursive: true })).toEqual([]);
  });

  it('--index-only carries rows only; import checks the files already on this machine', async () => {
    const a = machine('a');
    await populate(a);
    const out = join(work, 'index.tar');
    expect(await a.transfer.exportTo(out, { indexOnly: true })).toMatchObject({ rows: 3, files: 0 });
    const listing = (await execa('tar', ['-tf', out])).stdout.split('\n').filter(Boolean);
    expect(listing.sort()).toEqual(['ferry-registry-export.json', 'registry.toml']);
    // Same model root (a shared disk): the files are there, so the rows go in.
    const shared = machine('shared');
    const onShared = new RegistryTransferService({ registry: shared.registry, models: shared.models, modelRoot: a.modelRoot, limits: LIMITS });
    expect((await onShared.importFrom(out)).added.sort()).toEqual(['copied', 'sharded', 'tiny']);
    // Elsewhere the weights are missing: nothing is added.
    const c = machine('c');
    await rm(join(a.modelRoot, 'staged', 'tiny.gguf'));
    await expect(c.transfer.importFrom(out)).rejects.toMatchObject({ code: 'registry.import_invalid' });
    expect(await c.models.list()).toEqual([]);
  });
});
