import picomatch from 'picomatch';
import { FerryError } from '../../errors/ferry-error.js';
import { describe } from '../../registry/model-id.js';
import type { HubFile } from './hf-client.js';
import { assertListedPath } from './listed-path.js';

const REPO_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;
const REVISION = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,199}$/;
/** `hf.co/{org}/{repo}:{QUANT}`, as Ollama and llama.cpp accept it. */
const SHORTHAND = /^(?:https?:\/\/)?(?:hf\.co|huggingface\.co)\/([^/:\s]+\/[^/:\s]+)(?::([A-Za-z0-9_.-]+))?$/;
/** `<name>-00001-of-00003.gguf`: one model in several files. */
const SHARD = /^(.*)-(\d{5})-of-(\d{5})\.(gguf|safetensors)$/i;

export function assertRepoId(repo: unknown): string {
  if (typeof repo !== 'string' || !REPO_ID.test(repo) || repo.includes('..')) {
    throw new FerryError('model.invalid_source', `invalid Hugging Face repo ${describe(repo)}: expected "org/name"`);
  }
  return repo;
}

export function assertRevision(revision: unknown): string {
  if (typeof revision !== 'string' || !REVISION.test(revision) || revision.includes('..')) {
    throw new FerryError('model.invalid_source', `invalid revision ${describe(revision)}`);
  }
  return revision;
}

/** A file name or glob from a request: relative, no `..`, no backslashes or control characters. */
export function assertFilePattern(pattern: unknown): string {
  if (
    typeof pattern !== 'string' ||
    pattern.length === 0 ||
    pattern.length > 512 ||
    pattern.startsWith('/') ||
    pattern.includes('\\') ||
    /[\u0000-\u001f\u007f]/.test(pattern) ||
    pattern.split('/').some((part) => part === '..' || part === '.')
  ) {
    throw new FerryError('model.invalid_source', `invalid hf_file ${describe(pattern)}: a relative file name or glob without ".."`);
  }
  return pattern;
}

export function parseHfShorthand(ref: string): { repo: string; quant?: string } | undefined {
  const m = SHORTHAND.exec(ref);
  if (!m) return undefined;
  return { repo: assertRepoId(m[1]), quant: m[2] };
}

/** Files matching names or globs; a matched shard brings in every shard of its set. */
export function selectFiles(files: HubFile[], patterns: string[], repo: string): HubFile[] {
  const chosen = new Map<string, HubFile>();
  for (const pattern of patterns) {
    const isMatch = picomatch(pattern, { dot: false });
    // Listings are checked when read (HfClient.listFiles); checked again here because a glob such as
    // `.[.]` matches `..` even with dot: false, so no glob may ever see an unchecked path.
    const hits = files.filter((f) => f.path === pattern || isMatch(f.path)).map((f) => ({ ...f, path: assertListedPath(f.path, repo) }));
    if (hits.length === 0) {
      throw new FerryError('source.not_found', `${repo}: no file matches ${describe(pattern)}`, { hint: `files: ${sample(files.map((f) => f.path))}` });
    }
    for (const f of hits) for (const s of withShards(f, files)) chosen.set(s.path, s);
  }
  return [...chosen.values()].sort((a, b) => a.path.localeCompare(b.path));
}

/** The GGUF whose name carries `quant` (case-insensitive), shards included; projector files excluded. */
export function pickQuant(files: HubFile[], quant: string | undefined, repo: string): HubFile[] {
  const ggufs = files.filter((f) => f.path.toLowerCase().endsWith('.gguf') && !/mmproj/i.test(f.path));
  if (ggufs.length === 0) throw new FerryError('source.not_found', `${repo}: no GGUF files in the repository`);
  const wanted = quant ?? (ggufs.length === 1 ? undefined : 'Q4_K_M');
  const matches = wanted ? ggufs.filter((f) => new RegExp(`(^|[-_./])${escapeRegex(wanted)}([-_.]|$)`, 'i').test(baseName(f.path))) : ggufs;
  if (matches.length === 0) {
    throw new FerryError('source.not_found', `${repo}: no GGUF for quant ${describe(wanted)}`, { hint: `available: ${sample(ggufs.map((f) => baseName(f.path)))}` });
  }
  const first = matches.sort((a, b) => a.path.length - b.path.length || a.path.localeCompare(b.path))[0];
  return withShards(first, files);
}

/** `Qwen2.5-0.5B-Instruct-Q4_K_M.gguf` -> `qwen2.5-0.5b-instruct-q4_k_m` (shard suffix dropped). */
export function modelIdFromFileName(path: string): string {
  const name = baseName(path).replace(SHARD, '$1').replace(/\.(gguf|safetensors|bin)$/i, '');
  return name.toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 128);
}

export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function withShards(file: HubFile, files: HubFile[]): HubFile[] {
  const m = SHARD.exec(file.path);
  if (!m) return [file];
  const [, stem, , total, ext] = m;
  const set = files.filter((f) => {
    const s = SHARD.exec(f.path);
    return s && s[1] === stem && s[3] === total && s[4] === ext;
  });
  if (set.length !== Number(total)) {
    throw new FerryError('source.not_found', `${file.path}: split model has ${set.length} of ${Number(total)} shards in the repository`);
  }
  return set.sort((a, b) => a.path.localeCompare(b.path));
}

function escapeRegex(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function sample(names: string[]): string {
  return names.slice(0, 12).join(', ') + (names.length > 12 ? `, ... (${names.length} files)` : '');
}
