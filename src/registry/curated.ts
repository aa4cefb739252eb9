/**
 * The curated catalogue: a starting menu of real models that `ferry init` and `GET
 * /api/catalogue` suggest. These are suggestions, not the registry: nothing here is
 * downloaded until a user pulls it. Repository and file names were checked against public
 * use of these repos at the time of writing; upstreams rename files, so a pull that
 * answers 404 means this list needs an update, not that Ferry is broken. Sizes are the
 * approximate download sizes in GB, for choosing what fits; pulls take the real sizes from
 * the source.
 */

export type CatalogueCapability = 'chat' | 'embed' | 'rerank' | 'vision';
/** `llama.cpp` serves GGUF files on a GPU or the CPU; `npu` is FastFlowLM serving its own tags. */
export type CatalogueBackend = 'llama.cpp' | 'npu';

/** One suggestion, with hal0's catalogue fields. */
export interface CatalogueEntry {
  /** The registry id the model gets when pulled (for FLM, the FLM tag itself). */
  id: string;
  display_name: string;
  description: string;
  family: string;
  size_gb: number;
  /** Memory the model needs to load (VRAM on a GPU, RAM on the CPU or NPU), in GB. */
  vram_gb_min: number;
  license: string;
  /** Hugging Face coordinates; absent for FLM tags, which FLM downloads itself. */
  hf_repo?: string;
  hf_file?: string;
  /** Vision projector file in the same repo, for multimodal GGUFs. */
  mmproj_file?: string;
  context_length: number;
  /** The slot this model suits (primary chat, embed, rerank, npu). */
  recommended_slot: string;
  tags: string[];
  capability: CatalogueCapability;
  backend: CatalogueBackend;
}

export const CURATED_CATALOGUE: readonly CatalogueEntry[] = [
  {
    id: 'qwen2.5-0.5b-instruct-q4_k_m',
    display_name: 'Qwen2.5 0.5B Instruct (Q4_K_M)',
    description: 'Tiny, fast chat model; runs anywhere, including CPU-only boxes.',
    family: 'qwen2.5',
    size_gb: 0.49,
    vram_gb_min: 1,
    license: 'apache-2.0',
    hf_repo: 'Qwen/Qwen2.5-0.5B-Instruct-GGUF',
    hf_file: 'qwen2.5-0.5b-instruct-q4_k_m.gguf',
    context_length: 32768,
    recommended_slot: 'primary',
    tags: ['small', 'cpu-friendly'],
    capability: 'chat',
    backend: 'llama.cpp',
  },
  {
    id: 'qwen2.5-1.5b-instruct-q4_k_m',
    display_name: 'Qwen2.5 1.5B Instruct (Q4_K_M)',
    description: 'Small chat model with noticeably better answers than 0.5B at modest cost.',
    family: 'qwen2.5',
    size_gb: 1.12,
    vram_gb_min: 2,
    license: 'apache-2.0',
    hf_repo: 'Qwen/Qwen2.5-1.5B-Instruct-GGUF',
    hf_file: 'qwen2.5-1.5b-instruct-q4_k_m.gguf',
    context_length: 32768,
    recommended_slot: 'primary',
    tags: ['small'],
    capability: 'chat',
    backend: 'llama.cpp',
  },
  {
    id: 'qwen3-1.7b-q4_k_m',
    display_name: 'Qwen3 1.7B (Q4_K_M)',
    description: 'Small Qwen3 with thinking and non-thinking modes.',
    family: 'qwen3',
    size_gb: 1.11,
    vram_gb_min: 2,
    license: 'apache-2.0',
    hf_repo: 'unsloth/Qwen3-1.7B-GGUF',
    hf_file: 'Qwen3-1.7B-Q4_K_M.gguf',
    context_length: 32768,
    recommended_slot: 'primary',
    tags: ['small', 'reasoning'],
    capability: 'chat',
    backend: 'llama.cpp',
  },
  {
    id: 'qwen3-4b-q4_k_m',
    display_name: 'Qwen3 4B (Q4_K_M)',
    description: 'The best all-round chat model here for a GPU with 4 GB or more.',
    family: 'qwen3',
    size_gb: 2.5,
    vram_gb_min: 4,
    license: 'apache-2.0',
    hf_repo: 'unsloth/Qwen3-4B-GGUF',
    hf_file: 'Qwen3-4B-Q4_K_M.gguf',
    context_length: 32768,
    recommended_slot: 'primary',
    tags: ['medium', 'reasoning'],
    capability: 'chat',
    backend: 'llama.cpp',
  },
  {
    id: 'llama-3.2-1b-instruct-q4_k_m',
    display_name: 'Llama 3.2 1B Instruct (Q4_K_M)',
    description: "Meta's small instruct model with a long context window.",
    family: 'llama3.2',
    size_gb: 0.81,
    vram_gb_min: 1.5,
    license: 'llama3.2',
    hf_repo: 'bartowski/Llama-3.2-1B-Instruct-GGUF',
    hf_file: 'Llama-3.2-1B-Instruct-Q4_K_M.gguf',
    context_length: 131072,
    recommended_slot: 'primary',
    tags: ['small'],
    capability: 'chat',
    backend: 'llama.cpp',
  },
  {
    id: 'smolvlm-500m-instruct-q8_0',
    display_name: 'SmolVLM 500M Instruct (Q8_0)',
    description: 'Tiny vision-language model: describe or read images.',
    family: 'smolvlm',
    size_gb: 0.55,
    vram_gb_min: 1,
    license: 'apache-2.0',
    hf_repo: 'ggml-org/SmolVLM-500M-Instruct-GGUF',
    hf_file: 'SmolVLM-500M-Instruct-Q8_0.gguf',
    mmproj_file: 'mmproj-SmolVLM-500M-Instruct-Q8_0.gguf',
    context_length: 8192,
    recommended_slot: 'primary',
    tags: ['small', 'vision'],
    capability: 'vision',
    backend: 'llama.cpp',
  },
  {
    id: 'nomic-embed-text-v1.5-q8_0',
    display_name: 'Nomic Embed Text v1.5 (Q8_0)',
    description: 'General-purpose text embeddings (768 dimensions, Matryoshka).',
    family: 'nomic-bert',
    size_gb: 0.15,
    vram_gb_min: 0.5,
    license: 'apache-2.0',
    hf_repo: 'nomic-ai/nomic-embed-text-v1.5-GGUF',
    hf_file: 'nomic-embed-text-v1.5.Q8_0.gguf',
    context_length: 8192,
    recommended_slot: 'embed',
    tags: ['embed', 'small'],
    capability: 'embed',
    backend: 'llama.cpp',
  },
  {
    id: 'bge-base-en-v1.5-q4_k_m',
    display_name: 'BGE Base EN v1.5 (Q4_K_M)',
    description: 'Compact English retrieval embeddings from BAAI.',
    family: 'bert',
    size_gb: 0.07,
    vram_gb_min: 0.5,
    license: 'mit',
    hf_repo: 'CompendiumLabs/bge-base-en-v1.5-gguf',
    hf_file: 'bge-base-en-v1.5-q4_k_m.gguf',
    context_length: 512,
    recommended_slot: 'embed',
    tags: ['embed', 'small', 'english'],
    capability: 'embed',
    backend: 'llama.cpp',
  },
  {
    id: 'bge-reranker-v2-m3-q4_k_m',
    display_name: 'BGE Reranker v2 M3 (Q4_K_M)',
    description: 'Multilingual cross-encoder that reorders search results (llama-server --reranking).',
    family: 'xlm-roberta',
    size_gb: 0.44,
    vram_gb_min: 1,
    license: 'apache-2.0',
    hf_repo: 'gpustack/bge-reranker-v2-m3-GGUF',
    hf_file: 'bge-reranker-v2-m3-Q4_K_M.gguf',
    context_length: 8192,
    recommended_slot: 'rerank',
    tags: ['rerank', 'multilingual'],
    capability: 'rerank',
    backend: 'llama.cpp',
  },
  {
    id: 'qwen3:4b',
    display_name: 'Qwen3 4B on the NPU (FLM)',
    description: 'Qwen3 4B served by FastFlowLM on a Ryzen AI NPU, leaving the GPU free.',
    family: 'qwen3',
    size_gb: 3.1,
    vram_gb_min: 5,
    license: 'apache-2.0',
    context_length: 32768,
    recommended_slot: 'npu',
    tags: ['npu', 'reasoning'],
    capability: 'chat',
    backend: 'npu',
  },
  {
    id: 'qwen3:0.6b',
    display_name: 'Qwen3 0.6B on the NPU (FLM)',
    description: 'The smallest Qwen3 on the NPU; quick to pull and load.',
    family: 'qwen3',
    size_gb: 0.7,
    vram_gb_min: 1.5,
    license: 'apache-2.0',
    context_length: 32768,
    recommended_slot: 'npu',
    tags: ['npu', 'small'],
    capability: 'chat',
    backend: 'npu',
  },
  {
    id: 'llama3.2:1b',
    display_name: 'Llama 3.2 1B on the NPU (FLM)',
    description: "Meta's small instruct model served by FastFlowLM.",
    family: 'llama3.2',
    size_gb: 1.3,
    vram_gb_min: 2,
    license: 'llama3.2',
    context_length: 131072,
    recommended_slot: 'npu',
    tags: ['npu', 'small'],
    capability: 'chat',
    backend: 'npu',
  },
  {
    id: 'gemma3:4b',
    display_name: 'Gemma 3 4B on the NPU (FLM)',
    description: "Google's Gemma 3 4B with image input, served by FastFlowLM.",
    family: 'gemma3',
    size_gb: 3.6,
    vram_gb_min: 5,
    license: 'gemma',
    context_length: 32768,
    recommended_slot: 'npu',
    tags: ['npu', 'vision'],
    capability: 'vision',
    backend: 'npu',
  },
  {
    id: 'embed-gemma:300m',
    display_name: 'EmbeddingGemma 300M on the NPU (FLM)',
    description: 'Text embeddings from the NPU.',
    family: 'gemma3',
    size_gb: 0.3,
    vram_gb_min: 1,
    license: 'gemma',
    context_length: 2048,
    recommended_slot: 'npu',
    tags: ['npu', 'embed'],
    capability: 'embed',
    backend: 'npu',
  },
];

export function findCatalogueEntry(id: string, catalogue: readonly CatalogueEntry[] = CURATED_CATALOGUE): CatalogueEntry | undefined {
  return catalogue.find((e) => e.id === id);
}
