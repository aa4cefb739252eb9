import { mkdir, mkdtemp, readdir, readFile, lstat, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FerryConfig } from '../../src/config/load-config.js';
import { FerryError } from '../../src/errors/ferry-error.js';
import { RegistryStore } from '../../src/registry/registry-store.js';
import { ModelService } from '../../src/services/model-service.js';
import { makeTempHome } from '../support/temp-home.js';

let home: string;
let config: FerryConfig;
let cleanup: () => Promise<void>;
let outside: string;
let service: ModelService;

beforeEach(async () => {
  ({ home, config, cleanup } = await makeTempHome());
  outside = await mkdtemp(join(tmpdir(), 'ferry-outside-'));
  await mkdir(config.pullRoot, { recursive: true });
  service = new ModelService({ registry: new RegistryStore(config.registryDir), modelRoot: config.modelRoot, pullRoot: config.pullRoot });
});
afterEach(async () => {
  await cleanup();
  await rm(outside, { recursive: true, force: true });
});

/** Every path under the roots with its size and content digest: "nothing changed on disk" is an equality of two of these. */
async function snapshot(...roots: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (root: string, dir: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      const info = await lstat(path);
      const key = `${root}:${relative(root, path)}`;
      if (info.isDirectory()) {
        out[key] = 'dir';
        await walk(root, path);
      } else if (info.isSymbolicLink()) out[key] = 'symlink';
      else out[key] = `${info.size}:${info.ino}:${(await readFile(path)).toString('base64').slice(0, 64)}:${info.mtimeMs}`;
    }
  };
  for (const r of roots) await walk(r, r);
  return out;
}

async function weights(path: string, bytes = 3 * 1024 * 1024 + 17): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, randomBytes(bytes));
  return path;
}

async function sha256sum(path: string): Promise<string> {
  return (await execa('sha256sum', [path])).stdout.split(' ')[0];
}

async function refused(p: Promise<unknown>, code: string): Promise<FerryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FerryError);
  expect((err as FerryError).code).toBe(code);
  return err as FerryError;
}

describe('ModelService.add', () => {
  it('hashes the file in one read, matching sha256sum, with progress, and records it', async () => {
    const file = await weights(join(config.modelRoot, 'staged', 'model-q4.gguf'));
    const progress: number[] = [];
    const entry = await service.add({ id: 'model-q4', path: file, hf_repo: 'org/repo', hf_filename: 'model-q4.gguf', onProgress: (n) => progress.push(n) });
    expect(entry.sha256).toBe(await sha256sum(file));
    expect(entry.size_bytes).toBe(3 * 1024 * 1024 + 17);
    expect(entry).toMatchObject({ id: 'model-q4', path: file, hf_repo: 'org/repo', hf_filename: 'model-q4.gguf', backends: ['llama.cpp'] });
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(entry.size_bytes);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect(await service.get('model-q4')).toEqual(entry);
    expect(await new RegistryStore(config.registryDir).get('model-q4')).toEqual(entry); // on disk, not only in memory
  });

  it('copies a file from outside the model root into the pull root when told to', async () => {
    const src = await weights(join(outside, 'elsewhere.gguf'));
    const entry = await service.add({ id: 'copied', path: src, copy: true });
    expect(entry.path).toBe(join(config.pullRoot, 'elsewhere.gguf'));
    expect((await readFile(entry.path)).equals(await readFile(src))).toBe(true); // toEqual on 3 MB buffers crawls
    expect(entry.sha256).toBe(await sha256sum(src));
    expect((await readdir(config.pullRoot)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  describe('refusals change nothing on disk', () => {
    let before: Record<string, string>;
    let roots: string[];
    beforeEach(async () => {
      await weights(join(config.modelRoot, 'existing.gguf'), 1024);
      await service.add({ id: 'existing', path: join(config.modelRoot, 'existing.gguf') });
      await weights(join(outside, 'outside.gguf'), 1024);
      roots = [home, outside];
      before = await snapshot(...roots);
    });
    afterEach(async () => {
      expect(await snapshot(...roots)).toEqual(before);
    });

    it('a path outside the model root without copy: model.invalid_path', async () => {
      const err = await refused(service.add({ id: 'outsider', path: join(outside, 'outside.gguf') }), 'model.invalid_path');
      expect(err.message).toContain('outside the model root');
    });

    it('a symlink inside the model root that escapes it: model.invalid_path', async () => {
      await symlink(join(outside, 'outside.gguf'), join(config.modelRoot, 'sneaky.gguf'));
      before = await snapshot(...roots);
      await refused(service.add({ id: 'sneaky', path: join(config.modelRoot, 'sneaky.gguf') }), 'model.invalid_path');
    });

    it('a path climbing out with ..: model.invalid_path', async () => {
      await refused(service.add({ id: 'climber', path: join(config.modelRoot, '..', '..', relative('/', outside), 'outside.gguf') }), 'model.invalid_path');
    });

    it('a missing file, a directory, a NUL in the path: model.invalid_path', async () => {
      await refused(service.add({ id: 'ghost', path: join(config.modelRoot, 'nope.gguf') }), 'model.invalid_path');
      await refused(service.add({ id: 'dir', path: config.modelRoot }), 'model.invalid_path');
      await refused(service.add({ id: 'nul', path: `${config.modelRoot}/x\0.gguf` }), 'model.invalid_path');
      await refused(service.add({ id: 'empty', path: '' }), 'model.invalid_path');
    });

    it('a bad id: model.invalid_id, before the file is read', async () => {
      for (const id of ['../escape', 'Upper', 'a b', 'a/b', '', 'x'.repeat(129)]) {
        await refused(service.add({ id, path: join(config.modelRoot, 'existing.gguf') }), 'model.invalid_id');
      }
    });

    it('an id already present: model.exists, also with copy (no copy left behind)', async () => {
      await refused(service.add({ id: 'existing', path: join(config.modelRoot, 'existing.gguf') }), 'model.exists');
      await refused(service.add({ id: 'existing', path: join(outside, 'outside.gguf'), copy: true }), 'model.exists');
    });

    it('copy onto a file already in the pull root: model.exists', async () => {
      await weights(join(config.pullRoot, 'outside.gguf'), 10);
      before = await snapshot(...roots);
      await refused(service.add({ id: 'clash', path: join(outside, 'outside.gguf'), copy: true }), 'model.exists');
    });

    it('remove of an unknown id, update of a bad field', async () => {
      await refused(service.remove('never-added'), 'model.not_found');
      await refused(service.update('existing', { path: '/etc/passwd' } as never), 'request.invalid');
      await refused(service.update('never-added', { name: 'x' }), 'model.not_found');
      await refused(service.update('existing', { metadata: { nested: { x: null } } }), 'request.invalid');
    });

    it('a corrupt registry: every operation refuses, the file keeps its bytes', async () => {
      const file = join(config.registryDir, 'registry.toml');
      await writeFile(file, '[models."existing"]\npath = \n');
      before = await snapshot(...roots);
      await refused(service.list(), 'registry.corrupt');
      await refused(service.add({ id: 'new-one', path: join(config.modelRoot, 'existing.gguf') }), 'registry.corrupt');
      await refused(service.remove('existing'), 'registry.corrupt');
      await refused(service.update('existing', { name: 'x' }), 'registry.corrupt');
      await refused(service.add({ id: 'copy-one', path: join(outside, 'outside.gguf'), copy: true }), 'registry.corrupt');
    });
  });
});

describe('ModelService.remove and update', () => {
  it('remove deletes the weights it owns (pull root) and keeps files it does not own', async () => {
    const pulled = await weights(join(config.pullRoot, 'pulled.gguf'), 100);
    const staged = await weights(join(config.modelRoot, 'staged.gguf'), 100);
    const shared = await weights(join(config.pullRoot, 'shared.gguf'), 100);
    await service.add({ id: 'pulled', path: pulled });
    await service.add({ id: 'staged', path: staged });
    await new RegistryStore(config.registryDir).mutate((d) => {
      d.set({ id: 'shard-a', path: shared });
      d.set({ id: 'shard-b', path: join(config.pullRoot, 'other.gguf'), files: [{ path: shared }] });
    });

    expect(await service.remove('pulled')).toMatchObject({ deletedFiles: [pulled] });
    await expect(lstat(pulled)).rejects.toThrow();
    expect(await service.remove('staged')).toMatchObject({ deletedFiles: [] }); // staged by the user: theirs
    await lstat(staged);
    expect((await service.remove('shard-a')).deletedFiles).toEqual([]); // still used by shard-b's files
    await lstat(shared);
    expect((await service.list()).map((m) => m.id)).toEqual(['shard-b']);
  });

  it('refuses while a slot references the model', async () => {
    const file = await weights(join(config.pullRoot, 'busy.gguf'), 10);
    const busy = new ModelService({
      registry: new RegistryStore(config.registryDir),
      modelRoot: config.modelRoot,
      pullRoot: config.pullRoot,
      slotsUsing: async (id) => (id === 'busy' ? ['primary'] : []),
    });
    await busy.add({ id: 'busy', path: file });
    const err = await refused(busy.remove('busy'), 'model.in_use');
    expect(err.message).toContain('primary');
    await lstat(file);
  });

  it('update changes metadata (merge; null removes a key) and keeps everything else', async () => {
    const file = await weights(join(config.modelRoot, 'm.gguf'), 10);
    const added = await service.add({ id: 'm', path: file });
    await service.update('m', { metadata: { context_length: 4096, keep: 'me', drop: 'me' } });
    const next = await service.update('m', { name: 'Friendly', tags: ['fast'], metadata: { drop: null } as never });
    expect(next).toMatchObject({ id: 'm', path: file, sha256: added.sha256, name: 'Friendly', tags: ['fast'], metadata: { context_length: 4096, keep: 'me' } });
    expect(next.metadata).not.toHaveProperty('drop');
    expect(await new RegistryStore(config.registryDir).get('m')).toEqual(next);
  });
});
