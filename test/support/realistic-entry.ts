import { createHash } from 'node:crypto';
import type { RegistryEntry } from '../../src/registry/registry-entry.js';

const FAMILIES = ['qwen2.5', 'qwen3', 'llama-3.2', 'gemma-3', 'phi-4', 'mistral', 'nomic-embed-text', 'bge-base-en'];
const QUANTS = ['q4_k_m', 'q5_k_m', 'q8_0', 'f16'];

/**
 * A registry row shaped like the ones hal0 and Ferry write for a GGUF from the Hub
 * (about 550 bytes of TOML with its defaults and metadata tables), so 10,000 of them
 * make a registry of roughly the size the benchmark targets are about.
 */
export function realisticEntry(i: number, modelRoot = '/var/lib/ferry/models'): RegistryEntry {
  const family = FAMILIES[i % FAMILIES.length];
  const quant = QUANTS[i % QUANTS.length];
  const id = `${family}-${i}-${quant}`;
  const file = `${family}-${i}-instruct-${quant}.gguf`;
  return {
    id,
    path: `${modelRoot}/local/${file}`,
    size_bytes: 400_000_000 + i * 1_000_003,
    quant,
    license: 'apache-2.0',
    sha256: createHash('sha256').update(id).digest('hex'),
    hf_repo: `example-org/${family}-${i}-instruct-GGUF`,
    hf_filename: file,
    revision: createHash('sha1').update(id).digest('hex'),
    backends: ['llama.cpp'],
    tags: ['chat', family],
    capabilities: ['chat'],
    created_at: new Date(Date.UTC(2025, 0, 1) + i * 60_000).toISOString(),
    defaults: { context_size: 8192, n_gpu_layers: 99 },
    metadata: { context_length: 32768 },
  };
}
