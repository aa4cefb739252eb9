import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { installDirFor } from '../../src/services/hf-pull.js';
import { installFiles, type InstallStep } from '../../src/stores/install-files.js';
import { parsedRegistry, sha256OfFile } from '../support/registry-check.js';

const STEPS: Array<[InstallStep, number | undefined]> = [
  ['prove-ownership', undefined],
  ['place', 0],
  ['place', 1],
  ['fsync', undefined],
  ['prove-ownership-again', undefined],
  ['commit', undefined],
];

describe('installFiles: replace is a transaction', () => {
  let dir: string;
  let root: string;
  let registry: RegistryStore;
  let oldPath: string;
  let parts: string[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-install-'));
    root = join(dir, 'pull');
    await mkdir(join(root, '.tmp'), { recursive: true });
    await mkdir(join(root, 'm'), { recursive: true });
    registry = new RegistryStore(join(dir, 'registry'));
    oldPath = join(root, 'm', 'model.gguf');
    await writeFile(oldPath, 'the old good weights');
    await registry.mutate((d) => d.set({ id: 'm', path: oldPath, sha256: 'b'.repeat(64), hf_repo: 'a/b' }));
    parts = [join(root, '.tmp', 'one.part'), join(root, '.tmp', 'two.part')];
    await writeFile(parts[0], 'new shard one');
    await writeFile(parts[1], 'new shard two');
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  async function install(failAt?: [InstallStep, number | undefined], owned = true) {
    const models = (await registry.read()).models;
    const target = await installDirFor(root, 'm', models);
    const files = [
      { from: parts[0], to: join(target, 'model-00001-of-00002.gguf') },
      { from: parts[1], to: join(target, 'model-00002-of-00002.gguf') },
    ];
    await installFiles({
      files,
      root,
      proveOwnership: async () => {
        if (!owned) throw new Error('not the owner');
      },
      commit: () =>
        registry.mutate((d) => {
          const old = d.get('m');
          d.set({ id: 'm', path: files[0].to, files: files.map((f) => ({ path: f.to })) });
          return old ? [old.path] : [];
        }),
      beforeStep: (step, index) => {
        if (failAt && failAt[0] === step && failAt[1] === index) throw new Error(`injected failure at ${step}`);
      },
    });
    return { target, files };
  }

  it.each(STEPS)('a failure at %s (%s) leaves the old file and the old row exactly as they were', async (step, index) => {
    const rowBefore = (await parsedRegistry(registry.dir)).m;
    const oldSha = await sha256OfFile(oldPath);
    await expect(install([step, index])).rejects.toThrow(`injected failure at ${step}`);
    expect((await parsedRegistry(registry.dir)).m).toEqual(rowBefore);
    expect(await sha256OfFile(oldPath)).toBe(oldSha);
    // The verified new bytes are back where they were, nothing new is left in the pull root.
    expect(await readFile(parts[0], 'utf8')).toBe('new shard one');
    expect(await readFile(parts[1], 'utf8')).toBe('new shard two');
    expect((await readdir(root)).sort()).toEqual(['.tmp', 'm']);
    expect(await readdir(join(root, 'm'))).toEqual(['model.gguf']);
  });

  it('a worker that cannot prove it owns the job installs nothing', async () => {
    const rowBefore = (await parsedRegistry(registry.dir)).m;
    await expect(install(undefined, false)).rejects.toThrow('not the owner');
    expect((await parsedRegistry(registry.dir)).m).toEqual(rowBefore);
    expect((await readdir(root)).sort()).toEqual(['.tmp', 'm']);
  });

  it('commits, then removes the replaced file; the new files are under new names', async () => {
    const { target, files } = await install();
    expect(target).not.toBe(join(root, 'm')); // the old row lives in <root>/m: the new files go beside it
    expect(target.startsWith(join(root, 'm~'))).toBe(true);
    const row = (await parsedRegistry(registry.dir)).m;
    expect(row.path).toBe(files[0].to);
    expect(await readFile(files[0].to, 'utf8')).toBe('new shard one');
    await expect(readFile(oldPath)).rejects.toMatchObject({ code: 'ENOENT' });
    expect((await readdir(root)).sort()).toEqual(['.tmp', target.slice(root.length + 1)]); // the emptied old dir is pruned
  });

  it('a failure removing the replaced file is logged, not thrown: the row is already true', async () => {
    const logs: string[] = [];
    const models = (await registry.read()).models;
    const target = await installDirFor(root, 'm', models);
    await installFiles({
      files: [{ from: parts[0], to: join(target, 'model.gguf') }],
      root,
      proveOwnership: async () => undefined,
      commit: () => registry.mutate((d) => (d.set({ id: 'm', path: join(target, 'model.gguf') }), [oldPath])),
      beforeStep: (step) => {
        if (step === 'remove-previous') throw new Error('injected');
      },
      log: (m) => logs.push(m),
    });
    expect((await parsedRegistry(registry.dir)).m.path).toBe(join(target, 'model.gguf'));
    expect(logs.join('\n')).toMatch(/injected/);
  });
});
