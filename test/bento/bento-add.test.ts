import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addBentoVersion, humanSize } from '../../src/bento/add-bento-version.js';
import { exportBentoArchive, importBentoArchive } from '../../src/bento/bento-archive.js';
import { BentoStore } from '../../src/bento/bento-store.js';
import { parseModelYaml } from '../../src/bento/model-yaml.js';
import { expectFerryError } from '../support/expect-ferry-error.js';
import { childEnv, makeTempHome } from '../support/temp-home.js';

const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

let work: string;
let source: string;
let store: BentoStore;
beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-bento-add-'));
  source = join(work, 'my-model');
  await mkdir(join(source, 'tokenizer'), { recursive: true });
  await writeFile(join(source, 'weights.gguf'), randomBytes(3 * 1024 * 1024 + 1));
  await writeFile(join(source, 'tokenizer', 'vocab.json'), '{"a":1}');
  store = new BentoStore(join(work, 'registry'));
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

/** Every file under `dir`, relative path -> sha256. */
async function treeOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    out[path.slice(dir.length + 1)] = sha256(await readFile(path));
  }
  return out;
}

describe('addBentoVersion', () => {
  it('copies a directory into a new version with model.yaml, checksums and latest, leaving the source as it was', async () => {
    const before = await treeOf(source);
    const model = await addBentoVersion(store, { name: 'my-model', sourceDir: source, module: 'llama.cpp', labels: { team: 'ml' } });
    expect(model.version).toMatch(/^[a-z2-7]{16}$/);
    expect(model.path).toBe(store.versionDir('my-model', model.version));
    expect(await treeOf(source)).toEqual(before);

    const copied = await treeOf(model.path);
    expect(copied['weights.gguf']).toBe(before['weights.gguf']);
    expect(copied['tokenizer/vocab.json']).toBe(before['tokenizer/vocab.json']);
    const record = JSON.parse(await readFile(join(model.path, '.neutree/checksums/weights.gguf.json'), 'utf8'));
    expect(record).toEqual({ algorithm: 'sha256', hash: before['weights.gguf'] });

    const yaml = parseModelYaml(await readFile(join(model.path, 'model.yaml'), 'utf8'), 'model.yaml');
    expect(Object.keys(yaml)).toEqual(['name', 'version', 'module', 'labels', 'options', 'metadata', 'context', 'signatures', 'api_version', 'creation_time', 'size']);
    expect(yaml).toMatchObject({ name: 'my-model', version: model.version, module: 'llama.cpp', labels: { team: 'ml' }, size: '3.1MB' });
    expect(String(yaml.creation_time)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$/);
    expect(await store.readLatest('my-model')).toBe(model.version);

    const second = await addBentoVersion(store, { name: 'my-model', sourceDir: source });
    expect(second.version).not.toBe(model.version);
    expect(await store.readLatest('my-model')).toBe(second.version);
    expect((await store.list('my-model')).map((m) => m.version)).toEqual([second.version, model.version]);
  });

  it('makes a version whose export imports elsewhere, checksums verified', async () => {
    const model = await addBentoVersion(store, { name: 'my-model', sourceDir: source });
    const archive = join(work, 'x.bentomodel');
    const { stream } = await exportBentoArchive(store, 'my-model', 'latest');
    await pipeline(stream, createWriteStream(archive));
    const other = new BentoStore(join(work, 'other'));
    const imported = await importBentoArchive(other, createReadStream(archive), { maxBytes: 1024 ** 3, maxEntries: 1000 });
    expect(imported.version).toBe(model.version);
    expect(await treeOf(imported.path)).toEqual(await treeOf(model.path));
  });

  it.each([
    ['a symlink in the directory', async () => symlink('/etc/passwd', join(source, 'link')), 'bento.invalid_source'],
    ['a model.yaml already there', async () => writeFile(join(source, 'model.yaml'), 'name: x\n'), 'bento.invalid_source'],
  ])('refuses %s and leaves the registry untouched', async (_what, spoil, code) => {
    await spoil();
    expect((await expectFerryError(addBentoVersion(store, { name: 'my-model', sourceDir: source }))).code).toBe(code);
    expect(await readdir(store.root).catch(() => [])).toEqual([]);
  });

  it('refuses a bad name, a bad label, a file, a missing or an empty directory, writing nothing', async () => {
    expect((await expectFerryError(addBentoVersion(store, { name: '../evil', sourceDir: source }))).code).toBe('bento.invalid_name');
    expect((await expectFerryError(addBentoVersion(store, { name: 'ok', sourceDir: source, labels: { team: 'Has Space' } }))).code).toBe('bento.invalid_name');
    expect((await expectFerryError(addBentoVersion(store, { name: 'ok', sourceDir: join(source, 'weights.gguf') }))).code).toBe('bento.invalid_source');
    expect((await expectFerryError(addBentoVersion(store, { name: 'ok', sourceDir: join(work, 'nope') }))).code).toBe('bento.invalid_source');
    await mkdir(join(work, 'empty'));
    expect((await expectFerryError(addBentoVersion(store, { name: 'ok', sourceDir: join(work, 'empty') }))).code).toBe('bento.invalid_source');
    expect(await readdir(store.root).catch(() => [])).toEqual([]);
  });

  it('refuses a tree that changes under it: a file swapped for a symlink while an earlier file copies', async () => {
    const secret = join(work, 'secret.txt');
    await writeFile(secret, 'SECRET-OUTSIDE-SOURCE', { mode: 0o600 });
    await writeFile(join(source, 'a-big.bin'), Buffer.alloc(64 * 1024 * 1024, 1));
    await writeFile(join(source, 'b.txt'), 'harmless');
    const adding = addBentoVersion(store, { name: 'my-model', sourceDir: source }).catch((e: unknown) => e);
    // The listing is done once the temporary directory exists; swap b.txt while a-big.bin copies.
    while (!(await readdir(store.root).catch(() => [] as string[])).some((n) => n.startsWith('.ferry-tmp-add-'))) await new Promise((r) => setImmediate(r));
    await rm(join(source, 'b.txt'));
    await symlink(secret, join(source, 'b.txt'));
    const err = await adding;
    expect(err).toMatchObject({ code: 'bento.invalid_source' });
    expect(String((err as Error).message)).toContain('b.txt');
    expect(await readdir(store.root)).toEqual([]);
  });

  it('refuses a source that holds the registry, or sits inside it', async () => {
    const inside = new BentoStore(join(source, 'registry'));
    expect((await expectFerryError(addBentoVersion(inside, { name: 'my-model', sourceDir: source }))).code).toBe('bento.invalid_source');
    await addBentoVersion(store, { name: 'first', sourceDir: source });
    expect((await expectFerryError(addBentoVersion(store, { name: 'again', sourceDir: store.root }))).code).toBe('bento.invalid_source');
    expect((await store.list()).map((m) => m.name)).toEqual(['first']);
  });

  it('makes what it adds and imports readable by all even under umask 077', async () => {
    const old = process.umask(0o077);
    try {
      const model = await addBentoVersion(store, { name: 'my-model', sourceDir: source });
      const archive = join(work, 'x.bentomodel');
      await pipeline((await exportBentoArchive(store, 'my-model', 'latest')).stream, createWriteStream(archive));
      const imported = await importBentoArchive(new BentoStore(join(work, 'other')), createReadStream(archive), { maxBytes: 1024 ** 3, maxEntries: 1000 });
      for (const dir of [model.path, imported.path]) {
        for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
          const mode = (await stat(join(entry.parentPath, entry.name))).mode & 0o777;
          expect(mode, join(entry.parentPath, entry.name)).toBe(entry.isDirectory() ? 0o755 : 0o644);
        }
      }
    } finally {
      process.umask(old);
    }
  });

  it('writes sizes the way Neutree does', () => {
    expect([0, 999, 1000, 4_200_000_000, 1.5e12].map(humanSize)).toEqual(['0B', '999B', '1.0KB', '4.2GB', '1.5TB']);
  });
});

describe('ferry bento add', () => {
  it('adds a directory to the only registry and lists it; a bad label fails with its code', async () => {
    const temp = await makeTempHome();
    try {
      await writeFile(join(temp.home, 'config.toml'), `[registries.shared]\nurl = "file://${join(work, 'shared')}"\n`);
      const ferry = (...args: string[]) => execa(process.execPath, [MAIN, ...args], { env: childEnv(temp.env), extendEnv: false, reject: false });
      const added = await ferry('bento', 'add', source, '--name', 'my-model', '--label', 'team=ml', '--json');
      expect(added.exitCode, added.stderr).toBe(0);
      const model = JSON.parse(added.stdout);
      expect(model).toMatchObject({ registry: 'shared', name: 'my-model', info: { labels: { team: 'ml' }, module: 'ferry' } });
      const listed = await ferry('bento', 'list', '--json');
      expect(JSON.parse(listed.stdout).map((m: { tag: string }) => m.tag)).toEqual([`my-model:${model.version}`]);
      const bad = await ferry('bento', 'add', source, '--name', 'my-model', '--label', 'nonsense');
      expect(bad.exitCode).not.toBe(0);
      expect(bad.stderr).toMatch(/^ferry: bento\.invalid_name: label "nonsense": expected key=value/);
      // export without --out writes <name>-<version>.bentomodel in the working directory
      const out = await mkdtemp(join(work, 'out-'));
      const exported = await execa(process.execPath, [MAIN, 'bento', 'export', 'my-model:latest'], { cwd: out, env: childEnv(temp.env), extendEnv: false, reject: false });
      expect(exported.exitCode, exported.stderr).toBe(0);
      expect(await readdir(out)).toEqual([`my-model-${model.version}.bentomodel`]);
      expect(exported.stdout).toBe(`exported my-model-${model.version}.bentomodel to ${join(out, `my-model-${model.version}.bentomodel`)}`);
    } finally {
      await temp.cleanup();
    }
  });
});
