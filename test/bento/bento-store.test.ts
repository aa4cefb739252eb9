import { mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assertBentoVersion, isValidTagPart, parseBentoTag } from '../../src/bento/bento-name.js';
import { base32, newBentoVersionId } from '../../src/bento/bento-version-id.js';
import { BentoStore } from '../../src/bento/bento-store.js';
import { buildModelYaml, setModelYamlKey } from '../../src/bento/model-yaml.js';
import { writeModelDir } from './archive-makers.js';

let root: string;
let store: BentoStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ferry-bento-store-'));
  store = new BentoStore(root);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const at = (n: number) => `2026-01-0${n}T12:00:00.000000+00:00`;
const latestOf = async (name: string) => (await readFile(join(root, 'models', name, 'latest'), 'utf8')).trim();

/** Adds a version the way an import does: a staged directory committed into place. */
async function add(name: string, version: string, creationTime: string) {
  const staged = await store.makeTempDir('test');
  await writeModelDir(staged, { name, version, creationTime });
  return store.commit(staged, name, version, creationTime);
}

describe('names and version ids', () => {
  it('validates names and versions as BentoML does', () => {
    for (const ok of ['a', 'qwen2.5-7b', 'a_b', '0', 'x'.repeat(63)]) expect(isValidTagPart(ok)).toBe(true);
    for (const bad of ['', 'A', '-a', 'a-', 'a/b', '..', 'a b', 'x'.repeat(64), '.hidden']) expect(isValidTagPart(bad)).toBe(false);
    expect(() => assertBentoVersion('latest')).toThrow(/latest/);
    expect(parseBentoTag('m')).toEqual({ name: 'm', version: 'latest' });
    expect(parseBentoTag('m:v1')).toEqual({ name: 'm', version: 'v1' });
    expect(() => parseBentoTag('m:../x')).toThrow();
  });

  it("makes 16-character base32 ids from uuid1 bytes [0:6]+[8:12], as BentoML's", async () => {
    expect(base32(Buffer.from('foobar'))).toBe('mzxw6ytboi'); // RFC 4648 test vector, lowercased
    const ids = Array.from({ length: 1000 }, () => newBentoVersionId());
    for (const id of ids) expect(id).toMatch(/^[a-z2-7]{16}$/);
    expect(new Set(ids).size).toBe(1000);
    // Python builds the same id from the same uuid1 fields: decode ours and compare the time_low/time_mid.
    const now = Date.UTC(2099, 0, 1); // later than any id made above, so the counter does not bump it
    const id = newBentoVersionId(now);
    const { stdout } = await execa('python3', [
      '-c',
      'import base64,sys; b=base64.b32decode(sys.argv[1].upper()); t=((int(sys.argv[2])*10000+0x01b21dd213814000)); print(b[0:4].hex(), (t & 0xffffffff).to_bytes(4,"big").hex(), b[4:6].hex(), ((t>>32)&0xffff).to_bytes(2,"big").hex())',
      id,
      String(now),
    ]);
    const [timeLow, wantLow, timeMid, wantMid] = stdout.trim().split(' ');
    expect(timeMid).toBe(wantMid);
    // Ids made in the same millisecond bump the 100-ns counter, so only the low bits may differ.
    expect(parseInt(timeLow, 16) - parseInt(wantLow, 16)).toBeLessThan(2000);
    expect(parseInt(timeLow, 16) - parseInt(wantLow, 16)).toBeGreaterThanOrEqual(0);
  });

  it('writes model.yaml keys in BentoML order and keeps unknown keys when editing', async () => {
    const text = buildModelYaml({ name: 'm', version: newBentoVersionId(), module: 'transformers', labels: { a: 'b' }, size: '1.0GB' });
    const keys = [...text.matchAll(/^(\w+):/gm)].map((m) => m[1]);
    expect(keys).toEqual(['name', 'version', 'module', 'labels', 'options', 'metadata', 'context', 'signatures', 'api_version', 'creation_time', 'size']);
    expect(text).toMatch(/creation_time: "?\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00/);
    // PyYAML (what BentoML uses) reads what we write.
    const { stdout } = await execa('python3', ['-c', 'import sys,yaml; d=yaml.safe_load(sys.stdin); print(d["api_version"], d["labels"]["a"])'], { input: text });
    expect(stdout.trim()).toBe('v1 b');
    const edited = setModelYamlKey('name: m\n# keep me\nx_custom: [1, 2]\nversion: v1\n', 'version', 'v2');
    expect(edited).toBe('name: m\n# keep me\nx_custom: [1, 2]\nversion: v2\n');
  });
});

describe('the layout and latest', () => {
  it('lists every version newest first with all model.yaml fields, unknown keys kept', async () => {
    await add('a', 'v1', at(1));
    await add('a', 'v3', at(3));
    await add('b', 'v2', at(2));
    await writeModelDir(join(root, 'models/c/v9'), { name: 'c', version: 'v9', creationTime: '2026-01-02T12:00:00.000001+00:00', extraYaml: 'neutree_extra: kept' });
    const list = await store.list();
    expect(list.map((m) => m.tag)).toEqual(['a:v3', 'c:v9', 'b:v2', 'a:v1']);
    const c = list.find((m) => m.name === 'c')!;
    expect(c.info.neutree_extra).toBe('kept');
    expect(Object.keys(c.info).slice(0, 3)).toEqual(['name', 'version', 'module']);
    expect((await store.list('a')).map((m) => m.version)).toEqual(['v3', 'v1']);
  });

  it('moves latest only for a version not older than the current one', async () => {
    await add('m', 'v2', at(2));
    expect(await latestOf('m')).toBe('v2');
    await add('m', 'v1', at(1));
    expect(await latestOf('m')).toBe('v2');
    await add('m', 'v3', at(3));
    expect(await latestOf('m')).toBe('v3');
    expect(await store.resolveVersion('m', 'latest')).toBe('v3');
  });

  it('on delete, latest points at the newest remaining version and the name goes with its last', async () => {
    await add('m', 'v1', at(1));
    await add('m', 'v2', at(2));
    await add('m', 'v3', at(3));
    await store.delete('m', 'v3');
    expect(await latestOf('m')).toBe('v2');
    await store.delete('m', 'v1');
    expect(await latestOf('m')).toBe('v2');
    await store.delete('m', 'v2');
    expect(await readdir(join(root, 'models'))).toEqual([]);
    await expect(store.delete('m', 'v2')).rejects.toMatchObject({ code: 'bento.not_found' });
    expect((await readdir(root)).sort()).toEqual(['models']);
  });

  it('rebuilds a missing or stale latest from the newest creation_time', async () => {
    await writeModelDir(join(root, 'models/m/v1'), { name: 'm', version: 'v1', creationTime: at(1) });
    await writeModelDir(join(root, 'models/m/v2'), { name: 'm', version: 'v2', creationTime: at(2) });
    expect(await store.resolveVersion('m', 'latest')).toBe('v2');
    expect(await latestOf('m')).toBe('v2');
    await writeFile(join(root, 'models/m/latest'), 'gone');
    expect(await store.resolveVersion('m', 'latest')).toBe('v2');
    expect(await latestOf('m')).toBe('v2');
  });

  it('removes temp dirs a killed import left a day ago, and keeps younger ones (work in progress)', async () => {
    const old = await store.makeTempDir('import');
    await writeFile(join(old, 'half.bin'), 'x');
    const dayAgo = new Date(Date.now() - 25 * 3600 * 1000);
    await utimes(old, dayAgo, dayAgo);
    const young = await store.makeTempDir('add');
    const fresh = await store.makeTempDir('import');
    const left = await readdir(root);
    expect(left).not.toContain(basename(old));
    expect(left).toEqual(expect.arrayContaining([basename(young), basename(fresh)]));
  });

  it('skips stray files and our temp dirs; reports an unreadable model.yaml instead of failing the list', async () => {
    await add('m', 'v1', at(1));
    await writeFile(join(root, 'models/README'), 'not a model');
    await writeModelDir(join(root, 'models/m/v2'), { name: 'm', version: 'v2' });
    await writeFile(join(root, 'models/m/v2/model.yaml'), 'name: [unclosed');
    await store.makeTempDir('import');
    const list = await store.list();
    expect(list.map((m) => m.tag).sort()).toEqual(['m:v1', 'm:v2']);
    expect(list.find((m) => m.version === 'v2')!.error).toMatch(/does not parse/);
  });
});
