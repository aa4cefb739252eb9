import type { ModelRow, SlotView } from './types.js';

/** The Models table's own logic (search, sort, pages), kept apart from the DOM so it is unit-tested. */

export type SortKey = 'id' | 'size' | 'source' | 'revision' | 'backends' | 'status' | 'slots';
export type SortDir = 'asc' | 'desc';
export type ModelHealth = 'corrupt' | 'verified' | 'unverified';

export const PAGE_SIZE = 50;

/** `metadata.corrupt` (set by a failed verify) wins over an older `verified_at`. */
export function modelHealth(row: ModelRow): ModelHealth {
  if (row.metadata && row.metadata.corrupt) return 'corrupt';
  return row.verified_at ? 'verified' : 'unverified';
}

/** Where the weights came from: `org/repo / file`, or FLM, or nothing known. */
export function modelSource(row: ModelRow): string {
  if (row.hf_repo) return row.hf_filename ? `${row.hf_repo} / ${row.hf_filename}` : row.hf_repo;
  if (row.metadata?.runtime === 'flm') return 'FLM';
  return '';
}

/** The size of the row, or of its files added up when only they carry one. */
export function modelSize(row: ModelRow): number | undefined {
  if (typeof row.size_bytes === 'number') return row.size_bytes;
  if (!row.files?.length) return undefined;
  let total = 0;
  for (const f of row.files) {
    if (typeof f.size_bytes !== 'number') return undefined;
    total += f.size_bytes;
  }
  return total;
}

/** slot names by the model they use: the file's `[model] default` and the model loaded now. */
export function slotsByModel(slots: SlotView[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const slot of slots) {
    for (const id of new Set([slot.model, slot.model_id])) {
      if (!id) continue;
      const list = map.get(id) ?? [];
      list.push(slot.name);
      map.set(id, list);
    }
  }
  return map;
}

const haystacks = new WeakMap<ModelRow, string>();

/** Lower-case text a search looks in: id, name, source, revision, backends, tags, capabilities. */
function haystack(row: ModelRow): string {
  let text = haystacks.get(row);
  if (text === undefined) {
    text = [row.id, row.name, row.hf_repo, row.hf_filename, row.revision, ...(row.backends ?? []), ...(row.tags ?? []), ...(row.capabilities ?? [])]
      .filter(Boolean)
      .join(' ')
      .toLowerCase();
    haystacks.set(row, text);
  }
  return text;
}

/** Every whitespace-separated word of the query must appear somewhere in the row. */
export function filterModels(rows: ModelRow[], query: string): ModelRow[] {
  const words = query.toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return rows;
  return rows.filter((row) => {
    const text = haystack(row);
    return words.every((w) => text.includes(w));
  });
}

const collator = new Intl.Collator('en', { numeric: true, sensitivity: 'base' });

function compareBy(key: SortKey, slots: Map<string, string[]>): (a: ModelRow, b: ModelRow) => number {
  switch (key) {
    case 'size':
      return (a, b) => (modelSize(a) ?? -1) - (modelSize(b) ?? -1);
    case 'source':
      return (a, b) => collator.compare(modelSource(a), modelSource(b));
    case 'revision':
      return (a, b) => collator.compare(a.revision ?? '', b.revision ?? '');
    case 'backends':
      return (a, b) => collator.compare((a.backends ?? []).join(','), (b.backends ?? []).join(','));
    case 'status':
      return (a, b) => collator.compare(modelHealth(a), modelHealth(b));
    case 'slots':
      return (a, b) => (slots.get(a.id)?.length ?? 0) - (slots.get(b.id)?.length ?? 0);
    default:
      return () => 0;
  }
}

/** A sorted copy; ties (and the `id` key itself) fall back to the id so the order is stable. */
export function sortModels(rows: ModelRow[], key: SortKey, dir: SortDir, slots: Map<string, string[]> = new Map()): ModelRow[] {
  const primary = compareBy(key, slots);
  const sign = dir === 'asc' ? 1 : -1;
  return [...rows].sort((a, b) => {
    const byKey = key === 'id' ? 0 : primary(a, b);
    return byKey !== 0 ? sign * byKey : (key === 'id' ? sign : 1) * collator.compare(a.id, b.id);
  });
}

/** Rows of page `page` (0-based, clamped) and the page count (at least 1). */
export function pageOf<T>(rows: T[], page: number, size = PAGE_SIZE): { rows: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(rows.length / size));
  const at = Math.min(Math.max(0, page), pages - 1);
  return { rows: rows.slice(at * size, at * size + size), page: at, pages };
}

/** A model id from a file name, as the API derives one (`Qwen2.5-0.5B-Q4_K_M.gguf` -> `qwen2.5-0.5b-q4_k_m`). */
export function idFromFileName(file: string): string {
  const base = file.split('/').pop() ?? file;
  return base
    .replace(/^(.*)-(\d{5})-of-(\d{5})\.(gguf|safetensors)$/i, '$1')
    .replace(/\.(gguf|safetensors|bin)$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 128);
}
