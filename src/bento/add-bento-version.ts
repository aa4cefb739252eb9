import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, readlink, realpath, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../errors/ferry-error.js';
import { HashingPassThrough } from '../util/hash-stream.js';
import { isWithin } from '../util/is-within.js';
import { NEUTREE_CHECKSUMS } from './bento-archive.js';
import { assertBentoName, isValidTagPart } from './bento-name.js';
import type { BentoModelInfo, BentoStore } from './bento-store.js';
import { newBentoVersionId } from './bento-version-id.js';
import { makeReadableByAll, modelDirEntries } from './model-dir-entries.js';
import { buildModelYaml, MODEL_YAML } from './model-yaml.js';

export interface AddVersionInput {
  name: string;
  /** The directory whose files become the new version; it is copied, never moved or changed. */
  sourceDir: string;
  /** model.yaml's `module`, the framework that can load the files. @defaultValue "ferry" */
  module?: string;
  labels?: Record<string, string>;
}

/**
 * Creates a new version of `name` from a directory of files, as BentoML's save_model does: a
 * fresh 16-character version id, the files copied into a temporary directory in the store root,
 * a model.yaml in BentoML's key order (with Neutree's human-readable `size`), Neutree's
 * per-file sha256 records (taken while copying, so an export of it verifies on import), then
 * the same commit as an import: rename into place and move `latest`. Only regular files and
 * directories are taken, also if the tree changes while it is copied (a file swapped for a
 * symlink, a file written to); whatever fails, the temporary directory is removed and the
 * registry is unchanged. Everything is made readable by all, whatever the umask: other nodes'
 * users read a shared registry.
 */
export async function addBentoVersion(store: BentoStore, input: AddVersionInput): Promise<BentoModelInfo> {
  const name = assertBentoName(input.name);
  const labels = checkLabels(input.labels ?? {});
  const module = input.module ?? 'ferry';
  if (!(await stat(input.sourceDir).catch(() => undefined))?.isDirectory()) {
    throw new FerryError('bento.invalid_source', `${input.sourceDir} is not a directory`);
  }
  const source = await realpath(input.sourceDir);
  await mkdir(store.root, { recursive: true });
  const root = await realpath(store.root);
  if (source === root || isWithin(root, source) || isWithin(source, root)) {
    throw new FerryError('bento.invalid_source', `${input.sourceDir} and the registry at ${store.root} overlap: one holds the other`);
  }
  // Checksum records a copied Neutree directory brings are replaced by the ones taken while copying.
  const refuse = (rel: string) => new FerryError('bento.invalid_source', `${JSON.stringify(rel)} is not a regular file or directory (symlinks, devices and FIFOs are not taken)`);
  const files = (await modelDirEntries(source, refuse)).filter((e) => !e.isDirectory && !e.path.startsWith(NEUTREE_CHECKSUMS)).map((e) => e.path);
  if (files.length === 0) throw new FerryError('bento.invalid_source', `${input.sourceDir} has no files`);
  if (files.includes(MODEL_YAML)) {
    throw new FerryError('bento.invalid_source', `${input.sourceDir} already has a model.yaml: it is a BentoML model directory`, {
      hint: 'export it as a .bentomodel archive and import that instead',
    });
  }
  const version = newBentoVersionId();
  const creationTime = new Date();
  const temp = await store.makeTempDir('add');
  let committed = false;
  try {
    let bytes = 0;
    for (const rel of files) bytes += await copyRecordingDigest(source, temp, rel, refuse);
    await writeFile(join(temp, MODEL_YAML), buildModelYaml({ name, version, module, labels, size: humanSize(bytes), creationTime }));
    await makeReadableByAll(temp);
    await store.commit(temp, name, version, creationTime.toISOString());
    committed = true;
    return await store.get(name, version);
  } finally {
    if (!committed) await rm(temp, { recursive: true, force: true });
  }
}


/**
 * Copies one file, hashing it on the way, and writes Neutree's checksum record beside the tree.
 * The file is opened without following a symlink, and must still be a regular file at the path
 * it was listed under (Linux tells, through /proc/self/fd) and unchanged in size and mtime
 * after the copy: otherwise the tree changed under us and is refused.
 */
async function copyRecordingDigest(from: string, to: string, rel: string, refuse: (rel: string) => Error): Promise<number> {
  const src = await open(join(from, rel), constants.O_RDONLY | constants.O_NOFOLLOW).catch((err: NodeJS.ErrnoException) => {
    throw err.code === 'ELOOP' ? refuse(rel) : err;
  });
  try {
    const before = await src.stat();
    const openedAt = await readlink(`/proc/self/fd/${src.fd}`).catch(() => undefined);
    if (!before.isFile() || (openedAt !== undefined && openedAt !== join(from, rel))) throw refuse(rel);
    const dest = join(to, rel);
    await mkdir(dirname(dest), { recursive: true });
    const hasher = new HashingPassThrough();
    await pipeline(src.createReadStream({ highWaterMark: 1 << 20, autoClose: false }), hasher, createWriteStream(dest, { flags: 'wx' }));
    const after = await src.stat();
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || hasher.bytes !== before.size) {
      throw new FerryError('bento.invalid_source', `${JSON.stringify(rel)} changed while it was being copied`);
    }
    const record = join(to, `${NEUTREE_CHECKSUMS}${rel}.json`);
    await mkdir(dirname(record), { recursive: true });
    await writeFile(record, JSON.stringify({ algorithm: 'sha256', hash: hasher.hash.digest('hex') }));
    return hasher.bytes;
  } finally {
    await src.close();
  }
}


/** Label keys and values follow BentoML's tag rule, so every tool that filters by label can read them. */
function checkLabels(labels: Record<string, string>): Record<string, string> {
  for (const [key, value] of Object.entries(labels)) {
    if (!isValidTagPart(key) || !isValidTagPart(value)) {
      throw new FerryError('bento.invalid_name', `label ${JSON.stringify(`${key}=${value}`)}: keys and values are lowercase letters, digits, '-', '_' and '.'`);
    }
  }
  return labels;
}

/** Neutree's `size`: decimal units with one decimal, e.g. "4.2GB". */
export function humanSize(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes}B` : `${value.toFixed(1)}${units[unit]}`;
}
