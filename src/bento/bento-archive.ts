import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type * as Tar from 'tar';
import { lazyModule } from '../util/lazy-module.js';

const loadTar = lazyModule<typeof Tar>('tar');
import { FerryError } from '../errors/ferry-error.js';
import { describe } from '../registry/model-id.js';
import { freeBytes } from '../stores/disk-space.js';
import { compressStream } from './archive-compression.js';
import { assertBentoName, assertBentoVersion } from './bento-name.js';
import type { BentoModelInfo, BentoStore } from './bento-store.js';
import { makeReadableByAll, modelDirEntries } from './model-dir-entries.js';
import { MODEL_YAML, parseModelYaml } from './model-yaml.js';
import { safeExtract, type ExtractedFile } from './safe-extract.js';

/** Caps applied to every archive read; both come from config.toml. */
export interface ArchiveLimits {
  /** `archive_max_bytes`: total bytes the entries may hold. */
  maxBytes: number;
  /** `archive_max_entries`: how many entries (files and directories) an archive may have. */
  maxEntries: number;
}

export type ArchiveCompression = 'gzip' | 'xz';

/** Where Neutree records per-file digests inside a model directory: `<this><relpath>.json`. */
export const NEUTREE_CHECKSUMS = '.neutree/checksums/';

export function bentoArchiveName(name: string, version: string): string {
  return `${name}-${version}.bentomodel`;
}

/**
 * Imports one `.bentomodel` (gzip or xz, detected by magic bytes) into `store`: extract into a
 * temporary directory in the store root, check model.yaml and Neutree's checksums, rename into
 * place, then update `latest`. Whatever fails, the temporary directory is removed. `source` is
 * left open for its owner to close (an HTTP body must outlive a refusal so the answer can be sent).
 */
export async function importBentoArchive(store: BentoStore, source: Readable, limits: ArchiveLimits): Promise<BentoModelInfo> {
  const temp = await store.makeTempDir('import');
  let committed = false;
  try {
    const { files } = await safeExtract(source, { dest: temp, ...limits, freeBytes: await freeBytes(temp) });
    if (!files.has(MODEL_YAML)) throw new FerryError('bento.invalid_archive', 'archive has no model.yaml at its root');
    const yaml = parseModelYaml(await readFile(join(temp, MODEL_YAML), 'utf8'), MODEL_YAML);
    const name = assertBentoName(yaml.name);
    const version = assertBentoVersion(yaml.version);
    await verifyNeutreeChecksums(temp, files);
    await makeReadableByAll(temp);
    await store.commit(temp, name, version, yaml.creation_time);
    committed = true;
    return await store.get(name, version);
  } catch (err) {
    if (err instanceof FerryError && err.code === 'bento.corrupt') {
      throw new FerryError('bento.invalid_archive', err.message, { cause: err });
    }
    throw err;
  } finally {
    if (!committed) await rm(temp, { recursive: true, force: true });
  }
}

/** Every `.neutree/checksums/<relpath>.json` must match the digest taken while `<relpath>` was written. */
async function verifyNeutreeChecksums(dir: string, files: Map<string, ExtractedFile>): Promise<void> {
  for (const path of files.keys()) {
    if (!path.startsWith(NEUTREE_CHECKSUMS) || !path.endsWith('.json')) continue;
    const rel = path.slice(NEUTREE_CHECKSUMS.length, -'.json'.length);
    let record: { algorithm?: unknown; hash?: unknown };
    try {
      record = JSON.parse(await readFile(join(dir, path), 'utf8'));
    } catch {
      throw new FerryError('bento.checksum_mismatch', `checksum file ${describe(path)} is not JSON`);
    }
    if (record.algorithm !== 'sha256' || typeof record.hash !== 'string') {
      throw new FerryError('bento.checksum_mismatch', `checksum file ${describe(path)} is not {"algorithm":"sha256","hash":...}`);
    }
    const actual = files.get(rel)?.sha256;
    if (actual !== record.hash.toLowerCase()) {
      throw new FerryError('bento.checksum_mismatch', `${describe(rel)}: sha256 ${actual ?? '(file missing)'} does not match ${record.hash}`, {
        details: { path: rel, expected: record.hash, actual: actual ?? null },
      });
    }
  }
}

/**
 * A `.bentomodel` stream of one version, laid out as BentoML writes it (a `./` entry, then
 * `./model.yaml` style paths, sorted so the same directory always gives the same archive).
 */
export async function exportBentoArchive(
  store: BentoStore,
  name: string,
  version: string,
  compression: ArchiveCompression = 'gzip',
): Promise<{ fileName: string; version: string; stream: Readable }> {
  const resolved = await store.resolveVersion(name, version);
  const dir = store.versionDir(name, assertBentoVersion(resolved));
  // Anything but regular files and directories would be refused on import, so it is refused here.
  const paths = (await modelDirEntries(dir, (rel) => new FerryError('bento.unsafe_archive', `cannot export ${describe(rel)}: only regular files and directories go into an archive`))).map((e) => e.path);
  const pack = loadTar().create({ cwd: dir, portable: true, noDirRecurse: true, follow: false }, ['.', ...paths.map((p) => `./${p}`)]);
  const tarStream = Readable.from(pack as AsyncIterable<Buffer>);
  return { fileName: bentoArchiveName(name, resolved), version: resolved, stream: compressStream(tarStream, compression) };
}

