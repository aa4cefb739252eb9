import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { exportBentoArchive, importBentoArchive, type ArchiveLimits } from '../../src/bento/bento-archive.js';
import { BentoStore } from '../../src/bento/bento-store.js';
import { FerryError } from '../../src/errors/ferry-error.js';
import { evilArchive, gnuTar, pythonMakeArchive, writeModelDir } from './archive-makers.js';

const LIMITS: ArchiveLimits = { maxBytes: 1024 ** 3, maxEntries: 10_000 };

let work: string;
let root: string;
let store: BentoStore;

beforeEach(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-bento-archive-'));
  // The registry lives one level down so leftovers in the registry dir *and* its parent are visible.
  root = join(work, 'parent', 'registry');
  store = new BentoStore(root);
});
afterEach(async () => {
  await rm(work, { recursive: true, force: true });
});

async function importFile(file: string, limits = LIMITS) {
  const source = createReadStream(file);
  try {
    return await importBentoArchive(store, source, limits);
  } finally {
    source.destroy();
  }
}

async function treeOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const abs = join(e.parentPath, e.name);
    out[abs.slice(dir.length + 1)] = createHash('sha256').update(await readFile(abs)).digest('hex');
  }
  return out;
}

describe('importing archives made by real tools', () => {
  const files = { 'config.json': '{"a":1}\n', 'weights/model.safetensors': Buffer.alloc(300_000, 7), 'tokenizer/vocab.txt': 'a\nb\n' };

  for (const format of ['gztar', 'xztar'] as const) {
    it(`reads shutil.make_archive ${format} (a "." entry first, ./ paths)`, async () => {
      const src = join(work, 'src');
      await writeModelDir(src, { name: 'qwen', version: 'abcdefgh12345678', files });
      const archive = await pythonMakeArchive(src, join(work, 'qwen-abcdefgh12345678'), format);
      const listing = (await execa('tar', ['-tf', archive])).stdout.split('\n');
      expect(listing[0]).toBe('./');
      const info = await importFile(archive);
      expect(info.tag).toBe('qwen:abcdefgh12345678');
      expect(info.info.module).toBe('transformers');
      expect(await treeOf(info.path)).toEqual(await treeOf(src));
      expect((await readFile(join(root, 'models', 'qwen', 'latest'), 'utf8')).trim()).toBe('abcdefgh12345678');
      expect((await readdir(root)).sort()).toEqual(['models']);
    });
  }

  for (const flag of ['-z', '-J'] as const) {
    it(`reads GNU tar ${flag}`, async () => {
      const src = join(work, 'src');
      await writeModelDir(src, { name: 'llama', version: 'v1', files });
      const archive = await gnuTar(src, join(work, 'a.bentomodel'), flag);
      const info = await importFile(archive);
      expect(await treeOf(info.path)).toEqual(await treeOf(src));
    });
  }

  it('refuses an existing version with bento.exists and leaves the first copy alone', async () => {
    const src = join(work, 'src');
    await writeModelDir(src, { name: 'm', version: 'v1', files: { 'a.txt': 'first' } });
    const archive = await gnuTar(src, join(work, 'a.tgz'), '-z');
    await importFile(archive);
    await writeFile(join(src, 'a.txt'), 'second');
    const again = await gnuTar(src, join(work, 'b.tgz'), '-z');
    await expect(importFile(again)).rejects.toMatchObject({ code: 'bento.exists' });
    expect(await readFile(join(root, 'models/m/v1/a.txt'), 'utf8')).toBe('first');
    expect((await readdir(root)).sort()).toEqual(['models']);
  });

  it('verifies .neutree/checksums when present', async () => {
    const src = join(work, 'src');
    const good = createHash('sha256').update('weights').digest('hex');
    await writeModelDir(src, {
      name: 'n',
      version: 'v1',
      files: { 'w.bin': 'weights', '.neutree/checksums/w.bin.json': JSON.stringify({ algorithm: 'sha256', hash: good }) },
    });
    expect((await importFile(await gnuTar(src, join(work, 'ok.tgz'), '-z'))).tag).toBe('n:v1');

    const bad = join(work, 'bad');
    await writeModelDir(bad, {
      name: 'n',
      version: 'v2',
      files: { 'w.bin': 'tampered', '.neutree/checksums/w.bin.json': JSON.stringify({ algorithm: 'sha256', hash: good }) },
    });
    await expect(importFile(await gnuTar(bad, join(work, 'bad.tgz'), '-z'))).rejects.toMatchObject({ code: 'bento.checksum_mismatch' });
    expect(await readdir(join(root, 'models/n'))).toEqual(expect.not.arrayContaining(['v2']));
    expect((await readdir(root)).sort()).toEqual(['models']);
  });

  it('rejects an archive without model.yaml, and names outside the tag rule', async () => {
    const src = join(work, 'src');
    await writeModelDir(src, { name: 'Bad_Name', version: 'v1' });
    await expect(importFile(await gnuTar(src, join(work, 'x.tgz'), '-z'))).rejects.toMatchObject({ code: 'bento.invalid_name' });
    await rm(join(src, 'model.yaml'));
    await expect(importFile(await gnuTar(src, join(work, 'y.tgz'), '-z'))).rejects.toMatchObject({ code: 'bento.invalid_archive' });
    expect(await readdir(root)).toEqual([]);
  });
});

describe('export', () => {
  for (const compression of ['gzip', 'xz'] as const) {
    it(`${compression}: an export imports byte-identical, in BentoML's layout`, async () => {
      const src = join(work, 'src');
      await writeModelDir(src, {
        name: 'phi',
        version: 'v9',
        files: { 'w/a.bin': Buffer.alloc(2_000_000, 3), 'b.json': '{}', 'empty.txt': '' },
        extraYaml: 'size: 2.0MB\nx_unknown:\n  keep: [1, 2]',
      });
      const first = await importFile(await gnuTar(src, join(work, 'in.tgz'), '-z'));
      const { fileName, stream } = await exportBentoArchive(store, 'phi', 'latest', compression);
      expect(fileName).toBe('phi-v9.bentomodel');
      const out = join(work, fileName);
      await pipeline(stream, createWriteStream(out));
      const magic = (await readFile(out)).subarray(0, 6);
      expect(magic[0]).toBe(compression === 'gzip' ? 0x1f : 0xfd);
      // The archive itself is BentoML-shaped: "./" first, then ./model.yaml-style paths.
      const listing = (await execa('tar', ['-tf', out])).stdout.split('\n');
      expect(listing[0]).toBe('./');
      expect(listing).toContain('./model.yaml');

      const other = new BentoStore(join(work, 'other'));
      const second = await importBentoArchive(other, createReadStream(out), LIMITS);
      expect(await treeOf(second.path)).toEqual(await treeOf(first.path));
      expect(await treeOf(second.path)).toEqual(await treeOf(src));
    });
  }
});

describe('malicious archives are refused with nothing left behind', () => {
  async function expectRefused(archive: string, code: string, limits = LIMITS): Promise<FerryError> {
    const err = (await importFile(archive, limits).catch((e: unknown) => e)) as FerryError;
    expect(err).toBeInstanceOf(FerryError);
    expect(err.code).toBe(code);
    // The registry holds nothing but (at most) an empty models/ dir; its parent holds only the registry.
    expect(await readdir(join(work, 'parent'))).toEqual(['registry']);
    const left = await readdir(root, { recursive: true });
    expect(left).toEqual([]);
    return err;
  }

  it('../ paths', async () => {
    await expectRefused(await evilArchive('dotdot', join(work, 'e.tgz')), 'bento.unsafe_archive');
    await expect(stat(join(root, 'escaped.txt'))).rejects.toThrow();
  });

  it('absolute paths', async () => {
    await rm('/tmp/ferry-evil-absolute.txt', { force: true });
    await expectRefused(await evilArchive('absolute', join(work, 'e.tgz')), 'bento.unsafe_archive');
    await expect(stat('/tmp/ferry-evil-absolute.txt')).rejects.toThrow();
  });

  it('a symlink, then a file through it', async () => {
    await rm('/tmp/ferry-evil-through-link.txt', { force: true });
    const err = await expectRefused(await evilArchive('symlink-then-file', join(work, 'e.tgz')), 'bento.unsafe_archive');
    expect(err.message).toMatch(/SymbolicLink/);
    await expect(stat('/tmp/ferry-evil-through-link.txt')).rejects.toThrow();
  });

  it('a hard link to /etc/passwd', async () => {
    const err = await expectRefused(await evilArchive('hardlink-passwd', join(work, 'e.tgz')), 'bento.unsafe_archive');
    expect(err.message).toMatch(/Link/);
  });

  it('a device node and a FIFO', async () => {
    await expectRefused(await evilArchive('device', join(work, 'd.tgz')), 'bento.unsafe_archive');
    await expectRefused(await evilArchive('fifo', join(work, 'f.tgz')), 'bento.unsafe_archive');
  });

  it('a header claiming 10 GB', async () => {
    const err = await expectRefused(await evilArchive('header-bomb', join(work, 'e.tgz')), 'bento.archive_too_large');
    expect(err.message).toMatch(/more than 1073741824 bytes/);
  });

  it('a 10 GB sparse file made by GNU tar -S', async () => {
    const src = join(work, 'sparse-src');
    await writeModelDir(src, { name: 'sparse', version: 'v1' });
    await execa('truncate', ['-s', '10G', join(src, 'weights.bin')]);
    const archive = await gnuTar(src, join(work, 'sparse.tgz'), '-z', ['--sparse']);
    expect((await stat(archive)).size).toBeLessThan(100_000);
    const err = await expectRefused(archive, 'bento.unsafe_archive');
    expect(err.message).toMatch(/SparseFile/);
    await rm(src, { recursive: true, force: true });
  });

  it('10 GB of zeros that compress small: refused by actual bytes once past the cap', async () => {
    const src = join(work, 'zeros');
    await writeModelDir(src, { name: 'zeros', version: 'v1', files: { 'z.bin': Buffer.alloc(3 * 1024 * 1024) } });
    const archive = await gnuTar(src, join(work, 'z.tgz'), '-z');
    await expectRefused(archive, 'bento.archive_too_large', { maxBytes: 1024 * 1024, maxEntries: 100 });
  });

  it('100,000 empty entries', async () => {
    const err = await expectRefused(await evilArchive('many-empty', join(work, 'e.tgz')), 'bento.archive_too_large');
    expect(err.message).toMatch(/more than 10000 entries/);
  });

  it('a truncated archive and a file that is not an archive', async () => {
    const src = join(work, 'src');
    await writeModelDir(src, { name: 't', version: 'v1', files: { 'big.bin': Buffer.alloc(500_000, 1) } });
    const full = await readFile(await gnuTar(src, join(work, 'full.tar'), '-J'));
    await writeFile(join(work, 'cut.tar.xz'), full.subarray(0, Math.floor(full.length / 2)));
    await expectRefused(join(work, 'cut.tar.xz'), 'bento.invalid_archive');
    await writeFile(join(work, 'junk'), 'this is not a tar archive at all'.repeat(40));
    await expectRefused(join(work, 'junk'), 'bento.invalid_archive');
  });
});
