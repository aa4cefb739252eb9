import { copyFile, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parse as parseToml, TomlDate } from 'smol-toml';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { RegistryStore, type RegistryDraft } from '../../src/registry/registry-store.js';
import { realisticEntry } from '../support/realistic-entry.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/hal0-registry.toml', import.meta.url));
const CACHE_FILE = '.registry.toml.cache.json';

let dir: string;
let file: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-registry-'));
  file = join(dir, 'registry.toml');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function caught(p: Promise<unknown>): Promise<FerryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FerryError);
  return err as FerryError;
}

describe('RegistryStore: hal0 format', () => {
  it('reads a hal0-written registry: ids from table keys, every field, nested tables, dates', async () => {
    await copyFile(FIXTURE, file);
    const store = new RegistryStore(dir);
    const models = await store.list();
    expect(models.map((m) => m.id).sort()).toEqual([
      'bge-reranker-v2-m3-q4_k_m',
      'nomic-embed-text-v1.5-q8_0',
      'qwen2-vl-2b-instruct-q4_k_m',
      'qwen2.5-0.5b-instruct-q4_k_m',
      'qwen3:4b',
    ]);
    const qwen = (await store.get('qwen2.5-0.5b-instruct-q4_k_m'))!;
    expect(qwen).toMatchObject({
      path: '/var/lib/hal0/models/local/qwen2.5-0.5b-instruct-q4_k_m.gguf',
      size_bytes: 491400032,
      quant: 'Q4_K_M',
      capabilities: ['chat'],
      backends: ['llama.cpp'],
      hf_repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF',
      defaults: { context_size: 8192, extra_args: ['--flash-attn', '--mlock'], temperature: 0.7 },
      metadata: { context_length: 32768, eval: { mmlu: 47.5 } },
    });
    expect((qwen.metadata as Record<string, unknown>).downloaded_at).toBeInstanceOf(TomlDate);
    expect((await store.get('qwen3:4b'))!.metadata).toEqual({ runtime: 'flm' });
    expect((await store.get('qwen2-vl-2b-instruct-q4_k_m'))!.mmproj).toContain('mmproj-');
    expect((await store.read()).extra).toMatchObject({ schema_version: 2, ui: { theme: 'dark' } });
  });

  it('round trip keeps keys Ferry does not know: top-level, per model, [models."x".defaults], nested metadata', async () => {
    await copyFile(FIXTURE, file);
    const before = parseToml(await readFile(FIXTURE, 'utf8')) as { models: Record<string, Record<string, unknown>> };
    const store = new RegistryStore(dir);
    await store.mutate((draft) => draft.set({ ...realisticEntry(1), id: 'added-by-ferry' }));
    const after = parseToml(await readFile(file, 'utf8')) as { models: Record<string, Record<string, unknown>> } & Record<string, unknown>;
    // every hal0 row, unknown keys and all, is exactly what it was
    for (const [id, row] of Object.entries(before.models)) expect(after.models[id]).toEqual(row);
    expect(after.schema_version).toBe(2);
    expect(after.ui).toEqual({ theme: 'dark', pinned_order: ['qwen2.5-0.5b-instruct-q4_k_m', 'qwen3:4b'] });
    expect(after.models['added-by-ferry'].defaults).toEqual({ context_size: 8192, n_gpu_layers: 99 });
    // the datetime is still a TOML datetime, not a string
    expect((after.models['qwen2.5-0.5b-instruct-q4_k_m'].metadata as Record<string, unknown>).downloaded_at).toBeInstanceOf(TomlDate);
  });

  it('writes the keyed form, sorted by id, with the id only in the table key', async () => {
    const store = new RegistryStore(dir);
    await store.mutate((draft) => {
      draft.set({ id: 'zeta', path: '/m/z.gguf' });
      draft.set({ id: 'alpha', path: '/m/a.gguf', metadata: { runtime: 'flm' } });
      draft.set({ id: 'qwen3:0.6b', path: '/m/q' });
    });
    const text = await readFile(file, 'utf8');
    const headers = text.split('\n').filter((l) => l.startsWith('[models'));
    expect(headers).toEqual(['[models.alpha]', '[models.alpha.metadata]', '[models."qwen3:0.6b"]', '[models.zeta]']);
    expect(text).not.toMatch(/^id\s*=/m);
  });

  it("reads hal0's older [[models]] array form and rewrites it keyed", async () => {
    await writeFile(
      file,
      ['[[models]]', 'id = "old-one"', 'path = "/m/old-one.gguf"', 'legacy_flag = true', '', '[[models]]', 'id = "old-two"', 'path = "/m/old-two.gguf"', ''].join('\n'),
    );
    const store = new RegistryStore(dir);
    expect((await store.list()).map((m) => m.id)).toEqual(['old-one', 'old-two']);
    expect(await store.get('old-one')).toEqual({ id: 'old-one', path: '/m/old-one.gguf', legacy_flag: true });
    await store.mutate((draft) => draft.set({ id: 'new-one', path: '/m/new.gguf' }));
    const text = await readFile(file, 'utf8');
    expect(text).not.toContain('[[models]]');
    const doc = parseToml(text) as { models: Record<string, unknown> };
    expect(doc.models).toEqual({
      'new-one': { path: '/m/new.gguf' },
      'old-one': { path: '/m/old-one.gguf', legacy_flag: true },
      'old-two': { path: '/m/old-two.gguf' },
    });
  });

  it('a corrupt file is registry.corrupt naming file:line; mutate refuses and leaves the bytes unchanged', async () => {
    const corrupt = '[models."a"]\npath = "/m/a.gguf"\n\n[models."b"]\npath = "/m/b.gguf\nsize_bytes = 3\n';
    await writeFile(file, corrupt);
    const store = new RegistryStore(dir);
    const readErr = await caught(store.list());
    expect(readErr.code).toBe('registry.corrupt');
    expect(readErr.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:5:`));
    const writeErr = await caught(store.mutate((draft) => draft.set({ id: 'c', path: '/m/c.gguf' })));
    expect(writeErr.code).toBe('registry.corrupt');
    expect(await readFile(file, 'utf8')).toBe(corrupt);
    expect((await readdir(dir)).sort()).toEqual(['registry.toml', 'registry.toml.lock']); // no temp file, no Ferry lock, no cache; hal0's flock file (lock machinery, as hal0 leaves it)
  });

  it('a row without a path is corrupt too, not silently dropped', async () => {
    await writeFile(file, '[models."a"]\nsize_bytes = 1\n');
    expect((await caught(new RegistryStore(dir).list())).code).toBe('registry.corrupt');
  });

  it('a missing file is an empty registry, and the first write creates it', async () => {
    const store = new RegistryStore(join(dir, 'not-yet'));
    expect(await store.list()).toEqual([]);
    await store.mutate((draft) => draft.set({ id: 'a', path: '/m/a' }));
    expect(await new RegistryStore(join(dir, 'not-yet')).list()).toEqual([{ id: 'a', path: '/m/a' }]);
  });

  it('a change that throws writes nothing', async () => {
    const store = new RegistryStore(dir);
    await store.mutate((draft) => draft.set({ id: 'a', path: '/m/a' }));
    const before = await readFile(file, 'utf8');
    const info = await stat(file);
    await expect(
      store.mutate((draft) => {
        draft.set({ id: 'b', path: '/m/b' });
        throw new Error('changed my mind');
      }),
    ).rejects.toThrow('changed my mind');
    expect(await readFile(file, 'utf8')).toBe(before);
    expect((await stat(file)).ino).toBe(info.ino);
  });

  it('refuses to store null (TOML has none) instead of dropping it silently', async () => {
    const store = new RegistryStore(dir);
    const err = await caught(store.mutate((draft) => draft.set({ id: 'a', path: '/m/a', metadata: { x: null } })));
    expect(err.code).toBe('request.invalid');
    expect(await store.list()).toEqual([]);
  });

  it('a reader sees another process’s write (cache keyed by the file, not by time)', async () => {
    const reader = new RegistryStore(dir);
    const writer = new RegistryStore(dir);
    await writer.mutate((draft) => draft.set({ id: 'a', path: '/m/a' }));
    expect((await reader.list()).map((m) => m.id)).toEqual(['a']);
    const snapshot = await reader.read();
    expect(await reader.read()).toBe(snapshot); // unchanged file: the same cached snapshot
    await writer.mutate((draft) => draft.set({ id: 'b', path: '/m/b' }));
    expect((await reader.list()).map((m) => m.id)).toEqual(['a', 'b']);
  });
});

describe('RegistryStore: rows it does not change keep their text', () => {
  const HAND_EDITED = [
    '# hal0 registry, edited by hand',
    'schema_version = 2',
    '',
    '# the default chat model',
    '[models."qwen"]',
    'path = "/m/qwen.gguf"   # moved to the fast disk',
    'size_bytes = 491400032',
    '',
    '[models."qwen".defaults]',
    'temperature = 1.0',
    'top_p = 0.90',
    'extra_args = ["--mlock"]',
    '',
    '[models.alpha]',
    "path = '/m/alpha.gguf'",
    'notes = """',
    '[models."not-a-row"]',
    'is text inside a string',
    '"""',
    '',
    '[ui]',
    'theme = "dark"',
    '',
  ].join('\n');

  it('writes back hal0\'s text for every unchanged row (floats, comments, quoting) and re-serialises only the changed one', async () => {
    await writeFile(file, HAND_EDITED);
    const store = new RegistryStore(dir);
    const before = await store.read();
    await store.mutate((draft) => {
      draft.set({ id: 'beta', path: '/m/beta.gguf' });
      draft.set({ ...draft.get('alpha')!, tags: ['small'] });
    });
    const text = await readFile(file, 'utf8');
    // The untouched row, comments and all, is there byte for byte; 1.0 is still a float.
    expect(text).toContain(['# the default chat model', '[models."qwen"]', 'path = "/m/qwen.gguf"   # moved to the fast disk'].join('\n'));
    expect(text).toContain('temperature = 1.0\ntop_p = 0.90');
    expect(text.startsWith('# hal0 registry, edited by hand\nschema_version = 2')).toBe(true);
    // The changed row is Ferry's serialisation.
    expect(text).not.toContain("path = '/m/alpha.gguf'");
    // And the whole reads back as the data it should hold.
    const after = parseToml(text) as { models: Record<string, Record<string, unknown>> } & Record<string, unknown>;
    expect(after.models.qwen).toEqual((parseToml(HAND_EDITED) as { models: Record<string, unknown> }).models.qwen);
    expect(after.models.alpha).toEqual({ ...(before.models.get('alpha') as object), id: undefined, tags: ['small'] });
    expect(after.models.beta).toEqual({ path: '/m/beta.gguf' });
    expect(Object.keys(after.models)).toEqual(['alpha', 'beta', 'qwen']);
    expect(after.ui).toEqual({ theme: 'dark' });
    expect(after.schema_version).toBe(2);
  });

  it('keeps hal0\'s own file (tables after the rows included) row for row', async () => {
    await copyFile(FIXTURE, file);
    const original = await readFile(FIXTURE, 'utf8');
    const store = new RegistryStore(dir);
    await store.mutate((draft) => draft.set({ id: 'added-by-ferry', path: '/m/x.gguf' }));
    const text = await readFile(file, 'utf8');
    const block = (from: string, to: string) => original.slice(original.indexOf(from), original.indexOf(to)).trim();
    expect(text).toContain(block('[models."qwen2.5-0.5b-instruct-q4_k_m"]', '[models."nomic-embed-text-v1.5-q8_0"]'));
    expect(text).toContain(block('[models."qwen3:4b"]', '[models."bge-reranker-v2-m3-q4_k_m"]'));
    expect(text).toContain(original.slice(original.indexOf('[ui]')).trim());
  });

  // Cases a review found: the cutter is fooled into putting row b's header inside row a's text.
  // Every piece is checked on its own, so these fall back and the file still says what it should.
  it.each([
    ['a comment holding """', ['[models."a"]', 'path = "/a" # keep """ out', '[models."b"]', 'path = "/b"', '# see """ above', '[models."b".meta]', 'x = 1.0', '']],
    ["a string holding '''", ['[models."a"]', 'path = "/a"', `hint = "use ''' here"`, '[models."b"]', 'path = "/b"', '[[models."b".files]]', 'path = "w.bin"', '']],
    ['a dotted key for row b in the head', ['models."b".path = "/b"', '[models."a"]', 'path = "/a"', '[models."b".files]', 'n = 1.0', '']],
  ])('writes exactly the intended rows when %s fools the cutter', async (_what, lines) => {
    const text = lines.join('\n');
    const before = (parseToml(text) as { models: Record<string, Record<string, unknown>> }).models;
    const changes: Record<string, (draft: RegistryDraft) => void> = {
      'change a': (draft) => draft.set({ ...draft.get('a')!, path: '/new/a' }),
      'delete a': (draft) => void draft.delete('a'),
      'change b': (draft) => draft.set({ ...draft.get('b')!, path: '/new/b' }),
    };
    for (const [change, apply] of Object.entries(changes)) {
      await writeFile(file, text);
      await new RegistryStore(dir).mutate(apply);
      const after = (parseToml(await readFile(file, 'utf8')) as { models: Record<string, Record<string, unknown>> }).models;
      const expected: Record<string, Record<string, unknown>> = { ...before };
      if (change === 'change a') expected.a = { ...before.a, path: '/new/a' };
      if (change === 'delete a') delete expected.a;
      if (change === 'change b') expected.b = { ...before.b, path: '/new/b' };
      expect(JSON.parse(JSON.stringify(after)), change).toEqual(JSON.parse(JSON.stringify(expected)));
    }
  });

  it('falls back to serialising every row when the text cannot be cut into rows', async () => {
    // A row's tables apart from each other: cutting it would change what the file says.
    await writeFile(file, ['[models.a]', 'path = "/m/a"', '', '[models.b]', 'path = "/m/b"', 'weight = 1.0', '', '[models.a.defaults]', 'x = 1', ''].join('\n'));
    const store = new RegistryStore(dir);
    await store.mutate((draft) => draft.set({ id: 'c', path: '/m/c' }));
    const after = parseToml(await readFile(file, 'utf8')) as { models: Record<string, unknown> };
    expect(after.models).toEqual({ a: { path: '/m/a', defaults: { x: 1 } }, b: { path: '/m/b', weight: 1 }, c: { path: '/m/c' } });
  });
});

describe('RegistryStore: sidecar cache (.registry.toml.cache.json)', () => {
  it('a cold reader gets the same rows from the sidecar, dates included', async () => {
    await copyFile(FIXTURE, file);
    const writer = new RegistryStore(dir);
    await writer.mutate((draft) => draft.set({ ...realisticEntry(7), id: 'ferry-row' }));
    await writer.flush();
    expect((await readdir(dir)).includes(CACHE_FILE)).toBe(true);
    const fromToml = [...(await new RegistryStore(dir).read()).models.values()];
    const fromSidecar = [...(await new RegistryStore(dir).read()).models.values()];
    expect(fromSidecar).toEqual(fromToml);
    const qwen = fromSidecar.find((m) => m.id === 'qwen2.5-0.5b-instruct-q4_k_m')!;
    expect((qwen.metadata as Record<string, unknown>).downloaded_at).toBeInstanceOf(TomlDate);
    // ...and a cold writer that used it writes the same bytes a fresh parse would
    const coldWriter = new RegistryStore(dir);
    await coldWriter.read(); // from the sidecar: the chunks come from the file at write time
    await coldWriter.mutate((draft) => draft.set({ id: 'another', path: '/m/another' }));
    const doc = parseToml(await readFile(file, 'utf8')) as { models: Record<string, unknown> };
    const fixture = parseToml(await readFile(FIXTURE, 'utf8')) as { models: Record<string, unknown> };
    for (const [id, row] of Object.entries(fixture.models)) expect(doc.models[id]).toEqual(row);
  });

  it('is a cache only: a hal0 edit of registry.toml is seen, the stale sidecar ignored', async () => {
    const writer = new RegistryStore(dir);
    await writer.mutate((draft) => draft.set({ id: 'a', path: '/m/a', name: 'from ferry' }));
    await writer.flush();
    const cacheBefore = await readFile(join(dir, CACHE_FILE), 'utf8');
    await sleep(20); // past a coarse timestamp tick, so the edit gets a new mtime as it would in life
    // hal0 rewrites the file in place with the same length (same size, new mtime/ctime)
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('from ferry', 'from hal0!'));
    expect((await stat(file)).size).toBe(Buffer.byteLength(text));
    expect(await readFile(join(dir, CACHE_FILE), 'utf8')).toBe(cacheBefore);
    expect((await new RegistryStore(dir).get('a'))!.name).toBe('from hal0!');
    expect((await writer.get('a'))!.name).toBe('from hal0!');
    // and a hal0 replace by rename (new inode) likewise
    await writeFile(join(dir, 'hal0.tmp'), '[models."b"]\npath = "/m/b"\n');
    await rename(join(dir, 'hal0.tmp'), file);
    expect((await new RegistryStore(dir).list()).map((m) => m.id)).toEqual(['b']);
  });

  it('a torn or garbage sidecar is ignored', async () => {
    const writer = new RegistryStore(dir);
    await writer.mutate((draft) => draft.set({ id: 'a', path: '/m/a' }));
    await writer.flush();
    const cache = await readFile(join(dir, CACHE_FILE), 'utf8');
    await writeFile(join(dir, CACHE_FILE), cache.slice(0, cache.length - 10));
    expect((await new RegistryStore(dir).list()).map((m) => m.id)).toEqual(['a']);
    await writeFile(join(dir, CACHE_FILE), 'not json at all');
    expect((await new RegistryStore(dir).list()).map((m) => m.id)).toEqual(['a']);
  });
});
