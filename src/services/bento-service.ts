import { createReadStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { addBentoVersion, type AddVersionInput } from '../bento/add-bento-version.js';
import { exportBentoArchive, importBentoArchive, type ArchiveCompression, type ArchiveLimits } from '../bento/bento-archive.js';
import { parseBentoTag } from '../bento/bento-name.js';
import { BentoStore, type BentoModelInfo } from '../bento/bento-store.js';
import { ensureNfsMount } from '../bento/ensure-nfs-mount.js';
import { receiveUpload } from '../bento/receive-upload.js';
import { creationTimeMicros } from '../bento/model-yaml.js';
import { parseRegistryUrl, type RegistryLocation } from '../bento/registry-url.js';
import { FerryError } from '../errors/ferry-error.js';
import { describe } from '../registry/model-id.js';
import type { OpenAIModel } from './model-service.js';

/** One `[registries.<name>]` table of config.toml. */
export interface RegistryConfig {
  url: string;
  /** Where an nfs:// share is mounted. @defaultValue `<FERRY_HOME>/mnt/<name>` */
  mount_point?: string;
}

export interface BentoServiceDeps {
  registries: Record<string, RegistryConfig>;
  /** FERRY_HOME, under which nfs shares without a mount_point are mounted. */
  home: string;
  /** `mount_bin`. @defaultValue "mount" */
  mountBin?: string;
  limits: ArchiveLimits;
}

export interface RegistryDescription {
  name: string;
  url: string;
  kind: RegistryLocation['kind'];
  /** The local directory the store is read from (the mount point for nfs). */
  root: string;
}

/** A model of a file registry, as listed: the store's fields plus which registry it is in. */
export type RegistryModel = BentoModelInfo & { registry: string };

/**
 * File-based model registries in BentoML's layout, named in config.toml. The CLI, the API and the
 * slot layer all go through here; nfs:// registries are mounted on first use.
 */
export class BentoService {
  private readonly stores = new Map<string, Promise<BentoStore>>();

  constructor(private readonly deps: BentoServiceDeps) {}

  /** The archive caps (the import route's body limit is `limits.maxBytes`). */
  get limits(): ArchiveLimits {
    return this.deps.limits;
  }

  listRegistries(): RegistryDescription[] {
    return Object.entries(this.deps.registries)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, cfg]) => ({ name, url: cfg.url, kind: parseRegistryUrl(cfg.url).kind, root: this.rootOf(name, cfg) }));
  }

  /** `name` when given, else the only registry; with several and none named, an error listing them. */
  pickRegistry(name?: string): string {
    const names = Object.keys(this.deps.registries);
    if (name !== undefined) {
      if (!this.deps.registries[name]) {
        throw new FerryError('registry.not_found', `no registry named ${describe(name)}`, { hint: names.length ? `configured: ${names.join(', ')}` : 'add [registries.<name>] url = "file:///..." to config.toml' });
      }
      return name;
    }
    if (names.length === 1) return names[0];
    if (names.length === 0) throw new FerryError('registry.not_found', 'no file registries are configured', { hint: 'add [registries.<name>] url = "file:///..." to config.toml' });
    throw new FerryError('registry.not_found', `several registries are configured (${names.join(', ')}); name one`, { hint: 'pass --registry <name>' });
  }

  /** The store behind a registry, mounting an nfs share the first time it is needed. */
  async store(registry: string): Promise<BentoStore> {
    const name = this.pickRegistry(registry);
    let store = this.stores.get(name);
    if (!store) {
      store = this.openStore(name);
      this.stores.set(name, store);
      store.catch(() => this.stores.delete(name)); // a failed mount is retried on the next call
    }
    return store;
  }

  async listModels(registry: string, name?: string): Promise<RegistryModel[]> {
    const store = await this.store(registry);
    return (await store.list(name)).map((m) => ({ ...m, registry }));
  }

  /** Every registry's models together, newest first; `registry` narrows it to one. */
  async listAll(registry?: string): Promise<RegistryModel[]> {
    const names = registry ? [this.pickRegistry(registry)] : Object.keys(this.deps.registries);
    const lists = await Promise.all(names.map((r) => this.listModels(r)));
    return lists.flat().sort((a, b) => (creationTimeMicros(b.creation_time) || 0) - (creationTimeMicros(a.creation_time) || 0));
  }

  async getModel(registry: string, name: string, version: string): Promise<RegistryModel> {
    const store = await this.store(registry);
    const resolved = await store.resolveVersion(name, version);
    return { ...(await store.get(name, resolved)), registry };
  }

  /** `declaredBytes`: the upload's Content-Length, refused up front when over archive_max_bytes. */
  async importArchive(registry: string | undefined, source: Readable, options: { declaredBytes?: number } = {}): Promise<RegistryModel> {
    const name = this.pickRegistry(registry);
    if (options.declaredBytes !== undefined && options.declaredBytes > this.deps.limits.maxBytes) {
      throw new FerryError('bento.archive_too_large', `archive is ${options.declaredBytes} bytes; the limit is ${this.deps.limits.maxBytes}`, {
        hint: 'raise archive_max_bytes in config.toml',
      });
    }
    const store = await this.store(name);
    return { ...(await importBentoArchive(store, source, this.deps.limits)), registry: name };
  }

  /**
   * An archive arriving over HTTP: written to a temporary file beside the registry first (so a
   * slow or huge upload never sits in memory and a refusal leaves no half-extracted version),
   * then imported from that file, which is removed either way.
   */
  async importUpload(registry: string | undefined, source: Readable, options: { declaredBytes?: number } = {}): Promise<RegistryModel> {
    const name = this.pickRegistry(registry);
    if (options.declaredBytes !== undefined && options.declaredBytes > this.deps.limits.maxBytes) throw this.tooLarge(options.declaredBytes);
    const store = await this.store(name);
    await mkdir(store.root, { recursive: true });
    const file = await receiveUpload(source, store.root, { declaredBytes: options.declaredBytes, maxBytes: this.maxUploadBytes });
    try {
      return { ...(await importBentoArchive(store, createReadStream(file), this.deps.limits)), registry: name };
    } finally {
      await rm(file, { force: true });
    }
  }

  /** A compressed archive is at most its content plus headers: the same bound safe-extract puts on the raw stream. */
  private get maxUploadBytes(): number {
    return this.deps.limits.maxBytes + this.deps.limits.maxEntries * 1536 + (1 << 20);
  }

  private tooLarge(bytes: number): FerryError {
    return new FerryError('bento.archive_too_large', `archive is ${bytes} bytes; the limit is ${this.deps.limits.maxBytes}`, { hint: 'raise archive_max_bytes in config.toml' });
  }

  /** A new version from the files of a local directory (copied); `latest` moves to it. */
  async addDirectory(registry: string | undefined, input: AddVersionInput): Promise<RegistryModel> {
    const name = this.pickRegistry(registry);
    const store = await this.store(name);
    return { ...(await addBentoVersion(store, input)), registry: name };
  }

  async exportArchive(registry: string | undefined, name: string, version: string, compression: ArchiveCompression = 'gzip'): Promise<{ fileName: string; version: string; stream: Readable }> {
    const store = await this.store(this.pickRegistry(registry));
    return exportBentoArchive(store, name, version, compression);
  }

  async deleteModel(registry: string | undefined, name: string, version: string): Promise<void> {
    const store = await this.store(this.pickRegistry(registry));
    await store.delete(name, version);
  }

  /**
   * The directory a slot ref `<registry>/<name>:<version|latest>` names. `latest` is followed
   * (and rebuilt when missing or stale) at the time of the call, so a slot loads a fixed version.
   */
  async resolveBentoRef(ref: string): Promise<string> {
    const { registry, name, version } = parseBentoRef(ref);
    const store = await this.store(this.pickRegistry(registry));
    const resolved = await store.resolveVersion(name, version);
    return store.versionDir(name, resolved);
  }

  /**
   * One OpenAI model object per stored version, id'd by its slot ref. A registry that cannot be
   * read (a share that does not mount) is left out here: /v1/models must keep answering, and
   * the failure is reported by `GET /api/registries/:name/models`.
   */
  async listOpenAI(): Promise<OpenAIModel[]> {
    const out: OpenAIModel[] = [];
    for (const registry of Object.keys(this.deps.registries)) {
      let models: RegistryModel[];
      try {
        models = await this.listModels(registry);
      } catch {
        continue;
      }
      for (const m of models) {
        if (m.error) continue;
        const micros = creationTimeMicros(m.creation_time);
        out.push({ id: `${registry}/${m.tag}`, object: 'model', created: Number.isFinite(micros) ? Math.floor(micros / 1e6) : 0, owned_by: registry });
      }
    }
    return out;
  }

  private async openStore(name: string): Promise<BentoStore> {
    const cfg = this.deps.registries[name];
    const loc = parseRegistryUrl(cfg.url);
    const root = this.rootOf(name, cfg);
    if (loc.kind === 'nfs') await ensureNfsMount({ server: loc.server, exportPath: loc.exportPath, mountPoint: root, mountBin: this.deps.mountBin });
    return new BentoStore(root);
  }

  private rootOf(name: string, cfg: RegistryConfig): string {
    const loc = parseRegistryUrl(cfg.url);
    if (loc.kind === 'file') return loc.path;
    return cfg.mount_point ?? join(this.deps.home, 'mnt', name);
  }
}

/** `<registry>/<name>:<version|latest>`; a ref without a version means latest. */
export function parseBentoRef(ref: string): { registry: string; name: string; version: string } {
  const slash = ref.indexOf('/');
  if (slash <= 0) {
    throw new FerryError('bento.invalid_name', `invalid model ref ${describe(ref)}`, { hint: 'refs look like <registry>/<name>:<version|latest>' });
  }
  return { registry: ref.slice(0, slash), ...parseBentoTag(ref.slice(slash + 1)) };
}
