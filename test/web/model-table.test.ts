import { describe, expect, it } from 'vitest';
import { filterModels, idFromFileName, modelHealth, modelSize, modelSource, pageOf, slotsByModel, sortModels } from '../../web/src/model-table.js';
import { modelIdFromFileName } from '../../src/sources/huggingface/hf-ref.js';
import type { ModelRow, SlotView } from '../../web/src/types.js';

const row = (id: string, extra: Partial<ModelRow> = {}): ModelRow => ({ id, path: `/m/${id}.gguf`, ...extra });

describe('the Models table logic', () => {
  const rows = [
    row('qwen3-4b-q4_k_m', { size_bytes: 2_500_000_000, hf_repo: 'unsloth/Qwen3-4B-GGUF', hf_filename: 'Qwen3-4B-Q4_K_M.gguf', backends: ['llama.cpp'], verified_at: '2026-11-01' }),
    row('model-10', { size_bytes: 10, backends: ['llama.cpp'], tags: ['small'] }),
    row('model-9', { files: [{ path: 'a', size_bytes: 5 }, { path: 'b', size_bytes: 6 }], metadata: { corrupt: { file: 'a' } }, verified_at: '2026-11-01' }),
    row('qwen3:4b', { metadata: { runtime: 'flm' }, backends: ['npu'] }),
  ];

  it('says verified, corrupt (which wins over an older verify) or unverified', () => {
    expect(rows.map(modelHealth)).toEqual(['verified', 'unverified', 'corrupt', 'unverified']);
  });

  it('names the source and adds up file sizes when the row has none', () => {
    expect(modelSource(rows[0])).toBe('unsloth/Qwen3-4B-GGUF / Qwen3-4B-Q4_K_M.gguf');
    expect(modelSource(rows[3])).toBe('FLM');
    expect(modelSource(rows[1])).toBe('');
    expect(modelSize(rows[2])).toBe(11);
    expect(modelSize(rows[3])).toBeUndefined();
    expect(modelSize(row('x', { files: [{ path: 'a', size_bytes: 1 }, { path: 'b' }] }))).toBeUndefined();
  });

  it('finds rows by every word of the query in id, source, backend or tag, case-insensitively', () => {
    expect(filterModels(rows, '').length).toBe(4);
    expect(filterModels(rows, 'QWEN').map((r) => r.id)).toEqual(['qwen3-4b-q4_k_m', 'qwen3:4b']);
    expect(filterModels(rows, 'qwen npu').map((r) => r.id)).toEqual(['qwen3:4b']);
    expect(filterModels(rows, 'unsloth').map((r) => r.id)).toEqual(['qwen3-4b-q4_k_m']);
    expect(filterModels(rows, 'small').map((r) => r.id)).toEqual(['model-10']);
    expect(filterModels(rows, 'nothing-like-this')).toEqual([]);
  });

  it('sorts ids naturally (model-9 before model-10), by size, and by slots using them, either way', () => {
    expect(sortModels(rows, 'id', 'asc').map((r) => r.id)).toEqual(['model-9', 'model-10', 'qwen3-4b-q4_k_m', 'qwen3:4b']);
    expect(sortModels(rows, 'id', 'desc').map((r) => r.id)).toEqual(['qwen3:4b', 'qwen3-4b-q4_k_m', 'model-10', 'model-9']);
    expect(sortModels(rows, 'size', 'desc').map((r) => r.id)).toEqual(['qwen3-4b-q4_k_m', 'model-9', 'model-10', 'qwen3:4b']);
    const slots = slotsByModel([{ name: 'a', model: 'model-10', model_id: 'model-10' }, { name: 'b', model: 'model-10', model_id: 'qwen3:4b' }] as SlotView[]);
    expect(slots.get('model-10')).toEqual(['a', 'b']);
    expect(slots.get('qwen3:4b')).toEqual(['b']);
    expect(sortModels(rows, 'slots', 'desc', slots).map((r) => r.id)).toEqual(['model-10', 'qwen3:4b', 'model-9', 'qwen3-4b-q4_k_m']);
    expect(rows[0].id).toBe('qwen3-4b-q4_k_m'); // the input is not reordered
  });

  it('pages 10,000 rows 50 at a time, clamping the page number', () => {
    const many = Array.from({ length: 10_000 }, (_, i) => i);
    expect(pageOf(many, 0)).toMatchObject({ page: 0, pages: 200 });
    expect(pageOf(many, 0).rows).toHaveLength(50);
    expect(pageOf(many, 199).rows[49]).toBe(9999);
    expect(pageOf(many, 500).page).toBe(199);
    expect(pageOf(many, -3).page).toBe(0);
    expect(pageOf([], 0)).toEqual({ rows: [], page: 0, pages: 1 });
  });

  it('derives the same id from a file name as the API does', () => {
    for (const file of ['Qwen2.5-0.5B-Instruct-Q4_K_M.gguf', 'sub/dir/Model.Q8_0.gguf', 'big-00001-of-00003.gguf', 'weird name (1).safetensors']) {
      expect(idFromFileName(file), file).toBe(modelIdFromFileName(file));
    }
  });
});
