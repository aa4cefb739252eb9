import { lstat, mkdir, open, realpath, rename, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../errors/ferry-error.js';
import { assertModelId, describe } from '../registry/model-id.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import type { RegistrySnapshot, RegistryStore } from '../registry/registry-store.js';
import { HashingPassThrough, sha256File, type ProgressFn } from '../util/hash-stream.js';
import { fsyncDirectory, tempPathFor } from '../stores/atomic-write.js';
import { pathExists } from '../util/fs-exists.js';
import { isWithin } from '../util/is-within.js';
import { rowRepoFiles, sameSource } from './pull-source.js';

export interface AddModelInput {
  id: string;
  path: string;
  /** Copy a file from outside the model root into the pull root instead of refusing it. */
  copy?: boolean;
  hf_repo?: string;
  hf_filename?: string;
  backends?: string[];
  capabilities?: string[];
  tags?: string[];
  onProgress?: ProgressFn;
}

export interface ModelServiceDeps {
  registry: RegistryStore;
  modelRoot: string;
  pullRoot: string;
  /** Names of slots that reference a model id (filled in by the slot layer). */
  slotsUsing?: (id: string) => Promise<string[]>;
  /** More `/v1/models` entries from elsewhere (the file registries' models, by slot ref). */
  openAIExtras?: () => Promise<OpenAIModel[]>;
  /** Whether an NPU runtime is present (cached by the caller): FLM rows are then `pullable`. */
  npuPresent?: () => Promise<boolean>;
  /** Where the catalogue pulls an id from, to say when a row under a catalogue id came from elsewhere. */
  catalogue?: (id: string) => Promise<{ hf_repo: string; hf_file?: string } | undefined>;
}

/** Set on GET /api/models/<id> when the id is a catalogue id and its row came from other coordinates. */
export interface SourceConflict {
  catalogue: { hf_repo: string; hf_file: string | null };
  registry: { hf_repo: string | null; hf_file: string[] };
  message: string;
}

/** Fields a user may change with `update`; path, digests and id belong to Ferry. */
const UPDATABLE = ['name', 'license', 'quant', 'backends', 'tags', 'capabilities', 'metadata'] as const;
export type ModelUpdate = Partial<Pick<RegistryEntry, (typeof UPDATABLE)[number]>>;

/** What the CLI, the API and the workers all call to read and change the registry. */
export class ModelService {
  constructor(private readonly deps: ModelServiceDeps) {}

  async list(): Promise<RegistryEntry[]> {
    return this.deps.registry.list();
  }

  /** Rows as the API shows them: FLM rows get `pullable: true` when an NPU runtime is present here. */
  async listForApi(): Promise<RegistryEntry[]> {
    const rows = await this.list();
    if (!this.deps.npuPresent || !rows.some((e) => e.metadata?.runtime === 'flm')) return rows;
    const npu = await this.deps.npuPresent().catch(() => false);
    return rows.map((e) => (e.metadata?.runtime === 'flm' ? { ...e, pullable: npu } : e));
  }

  /**
   * GET /api/models's body, `{"models":[...]}`, serialised once per registry snapshot: at
   * 10,000 rows the serialisation alone takes ~250 ms, and the snapshot object changes
   * whenever the file does. If listForApi ever depends on more than the registry (FLM's
   * list, say), that input must become part of this cache's key.
   */
  async listForApiJson(): Promise<Buffer> {
    const snapshot = await this.deps.registry.read();
    if (this.apiBody?.snapshot === snapshot) return this.apiBody.body;
    // Kept as UTF-8 bytes: encoding a 6 MB string again on every request costs more than sending it.
    const body = Buffer.from(JSON.stringify({ models: await this.listForApi() }));
    this.apiBody = { snapshot, body };
    return body;
  }

  private apiBody?: { snapshot: RegistrySnapshot; body: Buffer };

  /** One OpenAI model object per registry row. */
  async listOpenAI(): Promise<OpenAIModel[]> {
    const rows = (await this.list()).map((e) => ({
      id: e.id,
      object: 'model' as const,
      created: toEpochSeconds(e.created_at),
      owned_by: ownerOf(e),
    }));
    return this.deps.openAIExtras ? [...rows, ...(await this.deps.openAIExtras())] : rows;
  }

  /** One entry of listOpenAI() by id (a registry id, a slot name or a file-registry ref). */
  async getOpenAI(id: string): Promise<OpenAIModel> {
    const found = (await this.listOpenAI()).find((m) => m.id === id);
    if (!found) throw new FerryError('model.not_found', `no model ${describe(id)} is served or registered here`, { hint: 'GET /v1/models lists them' });
    return found;
  }

  async get(id: string): Promise<RegistryEntry> {
    assertModelId(id);
    const entry = await this.deps.registry.get(id);
    if (!entry) throw new FerryError('model.not_found', `model "${id}" is not in the registry`);
    return entry;
  }

  /** `get`, plus `source_conflict` when a catalogue id's row did not come from the catalogue's repo and file. */
  async getWithSource(id: string): Promise<RegistryEntry & { source_conflict?: SourceConflict }> {
    const entry = await this.get(id);
    const coords = await this.deps.catalogue?.(id);
    if (!coords || sameSource(entry, { hf_repo: coords.hf_repo, hf_files: coords.hf_file ? [coords.hf_file] : [] })) return entry;
    return {
      ...entry,
      source_conflict: {
        catalogue: { hf_repo: coords.hf_repo, hf_file: coords.hf_file ?? null },
        registry: { hf_repo: entry.hf_repo ?? null, hf_file: rowRepoFiles(entry) },
        message: `"${id}" is a catalogue id for ${coords.hf_repo}, but this row came from ${entry.hf_repo ?? 'another source'}`,
      },
    };
  }

  async find(id: string): Promise<RegistryEntry | undefined> {
    assertModelId(id);
    return this.deps.registry.get(id);
  }

  /** Register a pre-staged file: hash it in one read, then add the row (content before index). */
  async add(input: AddModelInput): Promise<RegistryEntry> {
    const id = assertModelId(input.id);
    if (await this.deps.registry.get(id)) throw new FerryError('model.exists', `model "${id}" is already in the registry`);
    const source = await this.checkSourceFile(input.path);
    const inside = await this.isInsideModelRoot(source);
    if (!inside && !input.copy) {
      throw new FerryError('model.invalid_path', `${describe(input.path)} is outside the model root ${this.deps.modelRoot}`, {
        hint: 'move it under the model root, or pass --copy to copy it into the pull root',
      });
    }
    const { path, sha256, bytes } = inside
      ? { path: source, ...(await sha256File(source, input.onProgress)) }
      : await this.copyIn(source, input.onProgress);
    const entry: RegistryEntry = {
      id,
      path,
      size_bytes: bytes,
      sha256,
      ...(input.hf_repo ? { hf_repo: input.hf_repo } : {}),
      ...(input.hf_filename ? { hf_filename: input.hf_filename } : {}),
      backends: input.backends ?? guessBackends(path),
      capabilities: input.capabilities ?? ['chat'],
      ...(input.tags ? { tags: input.tags } : {}),
      created_at: new Date().toISOString(),
    };
    try {
      await this.deps.registry.mutate((draft) => {
        if (draft.has(id)) throw new FerryError('model.exists', `model "${id}" is already in the registry`);
        draft.set(entry);
      });
    } catch (err) {
      if (!inside) await rm(path, { force: true }); // the copy is ours; don't leave it orphaned
      throw err;
    }
    return entry;
  }

  /** Remove a row and the weights it owns (files in the pull root no other row points at). */
  async remove(id: string): Promise<{ removed: RegistryEntry; deletedFiles: string[] }> {
    assertModelId(id);
    const slots = (await this.deps.slotsUsing?.(id)) ?? [];
    if (slots.length > 0) {
      throw new FerryError('model.in_use', `model "${id}" is assigned to slot(s) ${slots.join(', ')}`, {
        hint: `unload the slot first (${slots.map((s) => `ferry slot unload ${s}`).join('; ')}), or swap its model`,
      });
    }
    const { removed, owned } = await this.deps.registry.mutate((draft) => {
      const entry = draft.get(id);
      if (!entry) throw new FerryError('model.not_found', `model "${id}" is not in the registry`);
      draft.delete(id);
      const stillUsed = new Set<string>();
      for (const other of draft.values()) for (const p of entryPaths(other)) stillUsed.add(p);
      const owned = entryPaths(entry).filter((p) => !stillUsed.has(p) && this.inPullRoot(p));
      return { removed: entry, owned };
    });
    // Index first, content second: a crash in between leaves an orphan file, never a row without weights.
    for (const p of owned) await rm(p, { recursive: true, force: true });
    return { removed, deletedFiles: owned };
  }

  async update(id: string, changes: ModelUpdate): Promise<RegistryEntry> {
    assertModelId(id);
    for (const key of Object.keys(changes)) {
      if (!(UPDATABLE as readonly string[]).includes(key)) {
        throw new FerryError('request.invalid', `field "${key}" cannot be updated`);
      }
    }
    return this.deps.registry.mutate((draft) => {
      const entry = draft.get(id);
      if (!entry) throw new FerryError('model.not_found', `model "${id}" is not in the registry`);
      const next: RegistryEntry = { ...entry, ...changes, id };
      if (changes.metadata) next.metadata = mergeMetadata(entry.metadata, changes.metadata);
      draft.set(next);
      return next;
    });
  }

  private async checkSourceFile(path: string): Promise<string> {
    if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
      throw new FerryError('model.invalid_path', `invalid path ${describe(path)}`);
    }
    let real: string;
    try {
      real = await realpath(resolve(path));
    } catch {
      throw new FerryError('model.invalid_path', `no such file: ${describe(path)}`);
    }
    const info = await stat(real);
    if (!info.isFile()) throw new FerryError('model.invalid_path', `${describe(path)} is not a regular file`);
    return real;
  }

  private async isInsideModelRoot(realFile: string): Promise<boolean> {
    let root: string;
    try {
      root = await realpath(this.deps.modelRoot);
    } catch {
      return false;
    }
    return isWithin(root, realFile);
  }

  private inPullRoot(path: string): boolean {
    return isWithin(resolve(this.deps.pullRoot), resolve(path));
  }

  /** Copy into the pull root via a temp file, hashing in the same pass; rename only when complete. */
  private async copyIn(source: string, onProgress?: ProgressFn): Promise<{ path: string; sha256: string; bytes: number }> {
    await mkdir(this.deps.pullRoot, { recursive: true });
    const dest = join(this.deps.pullRoot, basename(source));
    if (await pathExists(dest, { link: true })) throw new FerryError('model.exists', `${dest} already exists in the pull root`);
    const tmp = tempPathFor(dest);
    const hasher = new HashingPassThrough(onProgress);
    try {
      const out = createWriteStream(tmp, { flags: 'wx' });
      await pipeline(createReadStream(source, { highWaterMark: 1 << 20 }), hasher, out);
      const fh = await open(tmp, 'r');
      await fh.sync();
      await fh.close();
      await rename(tmp, dest);
      await fsyncDirectory(this.deps.pullRoot);
    } finally {
      await rm(tmp, { force: true });
    }
    return { path: dest, sha256: hasher.hash.digest('hex'), bytes: hasher.bytes };
  }
}

export interface OpenAIModel {
  id: string;
  object: 'model';
  created: number;
  owned_by: string;
}

function toEpochSeconds(value: unknown): number {
  const ms = value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : NaN;
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : 0;
}

/** The Hub organisation when the row came from the Hub, else the runtime, else "ferry". */
function ownerOf(e: RegistryEntry): string {
  if (e.hf_repo && e.hf_repo.includes('/')) return e.hf_repo.split('/')[0];
  const runtime = e.metadata?.runtime;
  return typeof runtime === 'string' ? runtime : 'ferry';
}


/** JSON merge-patch semantics for the free-form table: a null removes the key (TOML has no null). */
function mergeMetadata(current: Record<string, unknown> | undefined, patch: Record<string, unknown>): Record<string, unknown> {
  const next: Record<string, unknown> = { ...(current ?? {}) };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete next[key];
    else next[key] = value;
  }
  return next;
}

function entryPaths(entry: RegistryEntry): string[] {
  const paths = new Set<string>([entry.path]);
  for (const f of entry.files ?? []) if (typeof f.path === 'string') paths.add(f.path);
  return [...paths];
}

function guessBackends(path: string): string[] {
  return path.toLowerCase().endsWith('.gguf') ? ['llama.cpp'] : [];
}

