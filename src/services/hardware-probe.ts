import { constants } from 'node:fs';
import { access, readFile, readdir } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { delimiter, isAbsolute, join } from 'node:path';
import type * as Execa from 'execa';
import { lazyModule } from '../util/lazy-module.js';

const loadExeca = lazyModule<typeof Execa>('execa');
import { FerryError } from '../errors/ferry-error.js';
import { hasFlmTagShape } from '../registry/model-id.js';
import type { CatalogueEntry } from '../registry/curated.js';
import type { RegistryEntry } from '../registry/registry-entry.js';
import { SLOT_PORT_MIN, type SlotConfig, type SlotDevice } from '../slots/slot-config.js';

export type GpuVendor = 'amd' | 'nvidia' | 'intel' | 'unknown';

export interface GpuInfo {
  vendor: GpuVendor;
  /** PCI vendor id as sysfs prints it, e.g. 0x1002. */
  vendorId?: string;
  deviceId?: string;
  /** The DRM card (card0) or the vendor tool's index. */
  card: string;
  name?: string;
  vramBytes?: number;
  source: 'sysfs' | 'nvidia-smi' | 'rocm-smi';
}

export interface HardwareProbe {
  ramBytes: number;
  cpuCount: number;
  gpus: GpuInfo[];
  npu: { present: boolean; runtime?: string };
  /** Vendor tools found on PATH (nvidia-smi, rocm-smi, flm). */
  tools: Record<string, string>;
  /** Devices a slot could use here, best first among GPUs; cpu is always there. */
  devices: SlotDevice[];
}

export interface ProbeOptions {
  /**
   * Where sysfs is mounted (tests lay out a temp dir like /sys).
   * @defaultValue "/sys"
   */
  sysfsRoot?: string;
  /**
   * The PATH searched for nvidia-smi, rocm-smi and flm.
   * @defaultValue process.env.PATH
   */
  path?: string;
  /**
   * The flm binary (config `flm_bin`); the NPU counts as present when `flm version` runs.
   * @defaultValue "flm"
   */
  flmBin?: string;
  /**
   * Each vendor tool gets this long to answer.
   * @defaultValue 10000
   */
  toolTimeoutMs?: number;
  /** Overrides os.totalmem() (tests). */
  ramBytes?: number;
}

const VENDORS: Record<string, GpuVendor> = { '0x1002': 'amd', '0x10de': 'nvidia', '0x8086': 'intel' };

/**
 * What this box can run: RAM, GPUs (from /sys/class/drm, refined by nvidia-smi or rocm-smi
 * when they are on PATH) and an NPU (when the flm binary runs). Nothing here needs root,
 * and a missing or failing tool only means less detail, never an error.
 */
export async function probeHardware(options: ProbeOptions = {}): Promise<HardwareProbe> {
  const path = options.path ?? process.env.PATH ?? '';
  const timeout = options.toolTimeoutMs ?? 10_000;
  const tools: Record<string, string> = {};
  for (const name of ['nvidia-smi', 'rocm-smi']) {
    const found = await findOnPath(name, path);
    if (found) tools[name] = found;
  }
  const flm = isAbsolute(options.flmBin ?? 'flm') ? options.flmBin! : await findOnPath(options.flmBin ?? 'flm', path);
  if (flm) tools.flm = flm;

  let gpus = await sysfsGpus(join(options.sysfsRoot ?? '/sys', 'class', 'drm'));
  if (tools['nvidia-smi']) gpus = mergeNvidia(gpus, await nvidiaSmi(tools['nvidia-smi'], path, timeout));
  if (tools['rocm-smi']) gpus = mergeRocm(gpus, await rocmSmi(tools['rocm-smi'], path, timeout));
  const npu = flm ? await flmRuntime(flm, path, timeout) : { present: false };

  const devices: SlotDevice[] = [];
  if (gpus.some((g) => g.vendor === 'nvidia') && tools['nvidia-smi']) devices.push('gpu-cuda');
  if (gpus.some((g) => g.vendor === 'amd') && tools['rocm-smi']) devices.push('gpu-rocm');
  if (gpus.length > 0) devices.push('gpu-vulkan'); // every vendor's GPU has a Vulkan driver
  devices.push('cpu');
  if (npu.present) devices.push('npu');
  return { ramBytes: options.ramBytes ?? totalmem(), cpuCount: cpus().length, gpus, npu, tools, devices };
}

/** One entry per `cardN` (connectors such as card0-DP-1 are skipped). */
async function sysfsGpus(drmDir: string): Promise<GpuInfo[]> {
  let names: string[];
  try {
    names = await readdir(drmDir);
  } catch {
    return [];
  }
  const cards = names.filter((n) => /^card\d+$/.test(n)).sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
  const gpus: GpuInfo[] = [];
  for (const card of cards) {
    const dev = join(drmDir, card, 'device');
    const vendorId = (await readText(join(dev, 'vendor')))?.toLowerCase();
    if (!vendorId) continue;
    const vram = Number(await readText(join(dev, 'mem_info_vram_total')));
    gpus.push({
      vendor: VENDORS[vendorId] ?? 'unknown',
      vendorId,
      deviceId: await readText(join(dev, 'device')),
      card,
      vramBytes: Number.isFinite(vram) && vram > 0 ? vram : undefined,
      source: 'sysfs',
    });
  }
  return gpus;
}

/** `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`: "NVIDIA GeForce RTX 3090, 24576" (MiB). */
async function nvidiaSmi(bin: string, path: string, timeout: number): Promise<Array<{ name: string; vramBytes?: number }>> {
  const out = await runTool(bin, ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], path, timeout);
  return (out ?? '')
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((line) => {
      const at = line.lastIndexOf(',');
      const mib = Number(line.slice(at + 1));
      return { name: line.slice(0, at).trim(), vramBytes: Number.isFinite(mib) && mib > 0 ? mib * 1024 * 1024 : undefined };
    });
}

/** Fills NVIDIA cards in order; in a container without /sys/class/drm they come from nvidia-smi alone. */
function mergeNvidia(gpus: GpuInfo[], rows: Array<{ name: string; vramBytes?: number }>): GpuInfo[] {
  const nvidia = gpus.filter((g) => g.vendor === 'nvidia');
  rows.forEach((row, i) => {
    if (nvidia[i]) Object.assign(nvidia[i], { name: row.name, vramBytes: row.vramBytes ?? nvidia[i].vramBytes });
    else gpus.push({ vendor: 'nvidia', vendorId: '0x10de', card: `nvidia${i}`, name: row.name, vramBytes: row.vramBytes, source: 'nvidia-smi' });
  });
  return gpus;
}

/** `rocm-smi --showmeminfo vram --json`: {"card0": {"VRAM Total Memory (B)": "17163091968", ...}}. */
async function rocmSmi(bin: string, path: string, timeout: number): Promise<Map<string, number>> {
  const out = await runTool(bin, ['--showmeminfo', 'vram', '--json'], path, timeout);
  const result = new Map<string, number>();
  try {
    const doc = JSON.parse(out ?? '') as Record<string, Record<string, string>>;
    for (const [card, info] of Object.entries(doc)) {
      const bytes = Number(info?.['VRAM Total Memory (B)']);
      if (Number.isFinite(bytes) && bytes > 0) result.set(card, bytes);
    }
  } catch {
    // an older rocm-smi without --json: sysfs already has what we need
  }
  return result;
}

function mergeRocm(gpus: GpuInfo[], vram: Map<string, number>): GpuInfo[] {
  for (const gpu of gpus) if (gpu.vendor === 'amd' && gpu.vramBytes === undefined && vram.has(gpu.card)) gpu.vramBytes = vram.get(gpu.card);
  return gpus;
}

async function flmRuntime(bin: string, path: string, timeout: number): Promise<HardwareProbe['npu']> {
  const out = await runTool(bin, ['version'], path, timeout);
  return out === undefined ? { present: false } : { present: true, runtime: out.trim().split('\n')[0] || 'flm' };
}

/** stdout of a tool that exited 0, else undefined. */
async function runTool(bin: string, args: string[], path: string, timeout: number): Promise<string | undefined> {
  try {
    const { stdout } = await loadExeca().execa(bin, args, { env: { PATH: path }, stdin: 'ignore', timeout, maxBuffer: 4 * 1024 * 1024 });
    return stdout;
  } catch {
    return undefined;
  }
}

export async function findOnPath(name: string, path: string): Promise<string | undefined> {
  if (name.includes('/')) return (await isExecutable(name)) ? name : undefined;
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const candidate = join(dir, name);
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

async function isExecutable(file: string): Promise<boolean> {
  try {
    await access(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

export interface SlotSuggestion {
  config: SlotConfig;
  entry: CatalogueEntry;
  /** One line for `ferry init` to show: why this model on this device. */
  reason: string;
}

const GiB = 1024 ** 3;

/**
 * One model per slot that fits this box: `primary` gets the largest chat GGUF whose memory
 * need fits the best GPU (or half the RAM on a CPU-only box), `embed` the smallest
 * embedding model, and `npu` the largest FLM chat tag that fits in a quarter of the RAM
 * when an NPU runtime is present. Ports are given in order from 8081.
 */
export function suggestSlots(probe: HardwareProbe, catalogue: readonly CatalogueEntry[]): SlotSuggestion[] {
  const gpuDevice = probe.devices.find((d) => d.startsWith('gpu-'));
  const vram = Math.max(0, ...probe.gpus.map((g) => g.vramBytes ?? 0));
  // A GPU without a readable VRAM size (Intel iGPU, unknown driver) shares system RAM.
  const device: SlotDevice = gpuDevice ?? 'cpu';
  const budgetGb = (gpuDevice && vram > 0 ? vram : probe.ramBytes / 2) / GiB;
  const suggestions: SlotSuggestion[] = [];
  const add = (name: string, entry: CatalogueEntry | undefined, dev: SlotDevice, why: string) => {
    if (!entry) return;
    const config: SlotConfig = {
      slot: { name, port: SLOT_PORT_MIN + suggestions.length, device: dev, backend: entry.backend === 'npu' ? 'flm' : 'llama.cpp', idle_timeout_s: 300, autoload: true },
      model: { default: entry.id, context_size: Math.min(entry.context_length, 8192) },
      server: {},
    };
    suggestions.push({ config, entry, reason: `${entry.display_name} on ${dev}: ${why}` });
  };

  const fits = (e: CatalogueEntry, gb: number) => e.vram_gb_min <= gb;
  const gguf = catalogue.filter((e) => e.backend === 'llama.cpp');
  const largest = (list: CatalogueEntry[]) => [...list].sort((a, b) => b.size_gb - a.size_gb)[0];
  const smallest = (list: CatalogueEntry[]) => [...list].sort((a, b) => a.size_gb - b.size_gb)[0];

  add('primary', largest(gguf.filter((e) => e.capability === 'chat' && fits(e, budgetGb))), device, `the largest chat model that fits ${budgetGb.toFixed(1)} GB`);
  add('embed', smallest(gguf.filter((e) => e.capability === 'embed')), device, 'the smallest embedding model');
  if (probe.npu.present) {
    const npuBudget = probe.ramBytes / 4 / GiB;
    add('npu', largest(catalogue.filter((e) => e.backend === 'npu' && e.capability === 'chat' && fits(e, npuBudget))), 'npu', 'an FLM tag for the NPU, leaving the GPU free');
  }
  return suggestions;
}

/** How a model is served: a GGUF by llama.cpp, an FLM tag by FastFlowLM on the NPU. */
export type ModelRuntime = 'gguf' | 'flm' | 'other';

export function modelRuntime(entry: CatalogueEntry | RegistryEntry): ModelRuntime {
  const e = entry as Partial<CatalogueEntry> & Partial<RegistryEntry>;
  const meta = e.metadata as Record<string, unknown> | undefined;
  if (meta?.runtime === 'flm' || e.backend === 'npu' || (hasFlmTagShape(entry.id) && (e.backends ?? []).includes('npu'))) return 'flm';
  const file = e.hf_file ?? e.hf_filename ?? e.path ?? '';
  if (e.backend === 'llama.cpp' || /\.gguf$/i.test(file)) return 'gguf';
  return 'other';
}

/**
 * Refuses an assignment that cannot be served, with `slot.unservable`: a GGUF only by a
 * llama.cpp backend on a GPU or the CPU, an FLM tag only on the npu device. `backend` is
 * the slot's backend name (a key of config `backends`); unset means the device's default.
 */
export function validateAssignment(entry: CatalogueEntry | RegistryEntry, target: { device: SlotDevice; backend?: string; slot?: string }): void {
  const runtime = modelRuntime(entry);
  const where = `${target.slot ? `slot "${target.slot}" ` : ''}(device ${target.device}${target.backend ? `, backend ${target.backend}` : ''})`;
  const refuse = (why: string, hint: string): never => {
    throw new FerryError('slot.unservable', `${entry.id} cannot be served by ${where}: ${why}`, { hint, details: { model_id: entry.id, runtime, device: target.device, backend: target.backend } });
  };
  if (runtime === 'flm') {
    if (target.device !== 'npu') refuse('an FLM tag runs only on the NPU', 'assign it to a slot with device = "npu", or pick a GGUF for this slot');
    if (target.backend && /llama/i.test(target.backend)) refuse('llama.cpp cannot load FLM models', 'use the flm backend for npu slots');
  } else if (runtime === 'gguf') {
    if (target.device === 'npu') refuse('a GGUF needs llama.cpp on a GPU or the CPU', 'assign it to a gpu-* or cpu slot, or pick an FLM tag for the NPU');
    if (target.backend && !/llama/i.test(target.backend)) refuse(`a GGUF is served by llama.cpp backends only, not "${target.backend}"`, 'set the slot backend to a llama.cpp one (e.g. "llama.cpp")');
  } else {
    refuse('Ferry knows no backend for this model format (only GGUF files and FLM tags are served)', 'pull a GGUF build of the model');
  }
}
