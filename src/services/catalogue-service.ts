import { CURATED_CATALOGUE, type CatalogueBackend, type CatalogueCapability, type CatalogueEntry } from '../registry/curated.js';
import type { RegistryStore } from '../registry/registry-store.js';

/** A catalogue suggestion plus whether the registry already has it. */
export type CatalogueItem = CatalogueEntry & { in_registry: boolean };

export interface CatalogueFilter {
  capability?: CatalogueCapability;
  backend?: CatalogueBackend;
}

export interface CatalogueServiceDeps {
  registry: RegistryStore;
  /** Defaults to the curated list shipped with Ferry. */
  catalogue?: readonly CatalogueEntry[];
}

/** The curated menu for `GET /api/catalogue` and `ferry model catalogue`. */
export class CatalogueService {
  constructor(private readonly deps: CatalogueServiceDeps) {}

  async list(filter: CatalogueFilter = {}): Promise<CatalogueItem[]> {
    const present = (await this.deps.registry.read()).models;
    return (this.deps.catalogue ?? CURATED_CATALOGUE)
      .filter((e) => (!filter.capability || e.capability === filter.capability) && (!filter.backend || e.backend === filter.backend))
      .map((e) => ({ ...e, tags: [...e.tags], in_registry: present.has(e.id) }));
  }

  /** Where to pull a catalogue model from, when a pull request names only its id. */
  async coordinatesFor(id: string): Promise<{ hf_repo: string; hf_file?: string } | undefined> {
    const entry = (this.deps.catalogue ?? CURATED_CATALOGUE).find((e) => e.id === id);
    return entry?.hf_repo ? { hf_repo: entry.hf_repo, hf_file: entry.hf_file } : undefined;
  }
}
