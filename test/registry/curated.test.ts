import { describe, expect, it } from 'vitest';
import { CURATED_CATALOGUE, findCatalogueEntry } from '../../src/registry/curated.js';
import { hasFlmTagShape, isValidModelId } from '../../src/registry/model-id.js';
import { isValidSlotName } from '../../src/slots/slot-config.js';

describe('curated catalogue', () => {
  it('has unique ids that are valid registry ids', () => {
    const ids = CURATED_CATALOGUE.map((e) => e.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(isValidModelId(id), id).toBe(true);
  });

  it('gives every GGUF a Hugging Face repo and .gguf file, served by llama.cpp', () => {
    for (const e of CURATED_CATALOGUE.filter((x) => x.backend === 'llama.cpp')) {
      expect(e.hf_repo, e.id).toMatch(/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/);
      expect(e.hf_file, e.id).toMatch(/\.gguf$/);
      if (e.mmproj_file) expect(e.mmproj_file).toMatch(/^mmproj.*\.gguf$/);
      expect(hasFlmTagShape(e.id), e.id).toBe(false);
    }
  });

  it('gives FLM tags no Hugging Face coordinates and serves them on the NPU only', () => {
    const flm = CURATED_CATALOGUE.filter((x) => x.backend === 'npu');
    expect(flm.map((e) => e.id)).toEqual(expect.arrayContaining(['qwen3:4b', 'llama3.2:1b']));
    for (const e of flm) {
      expect(hasFlmTagShape(e.id), e.id).toBe(true);
      expect(e.hf_repo).toBeUndefined();
      expect(e.recommended_slot).toBe('npu');
    }
  });

  it('covers small chat GGUFs, embeddings and a reranker', () => {
    expect(findCatalogueEntry('qwen2.5-0.5b-instruct-q4_k_m')).toMatchObject({ hf_repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF', hf_file: 'qwen2.5-0.5b-instruct-q4_k_m.gguf', capability: 'chat' });
    expect(findCatalogueEntry('nomic-embed-text-v1.5-q8_0')?.capability).toBe('embed');
    expect(findCatalogueEntry('bge-base-en-v1.5-q4_k_m')?.hf_file).toBe('bge-base-en-v1.5-q4_k_m.gguf');
    expect(CURATED_CATALOGUE.some((e) => e.capability === 'rerank')).toBe(true);
    expect(CURATED_CATALOGUE.filter((e) => e.capability === 'chat' && e.backend === 'llama.cpp' && e.size_gb < 3).length).toBeGreaterThanOrEqual(3);
    expect(findCatalogueEntry('nope')).toBeUndefined();
  });

  it('has sane numbers and slot names', () => {
    for (const e of CURATED_CATALOGUE) {
      expect(e.size_gb, e.id).toBeGreaterThan(0);
      expect(e.vram_gb_min, e.id).toBeGreaterThanOrEqual(e.size_gb * 0.5);
      expect(Number.isInteger(e.context_length) && e.context_length >= 512, e.id).toBe(true);
      expect(isValidSlotName(e.recommended_slot), e.id).toBe(true);
      expect(e.display_name.length && e.description.length && e.license.length, e.id).toBeTruthy();
    }
  });
});
