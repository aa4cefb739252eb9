import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { CURATED_CATALOGUE, findCatalogueEntry } from '../../src/registry/curated.js';
import { probeHardware, suggestSlots, validateAssignment, type HardwareProbe } from '../../src/services/hardware-probe.js';
import { serializeSlotConfig } from '../../src/slots/slot-config.js';

const GiB = 1024 ** 3;
const FAKE_FLM = resolve('test/fixtures/fake-flm');
let root: string;
let sys: string;
let bin: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'ferry-probe-'));
  sys = join(root, 'sys');
  bin = join(root, 'bin');
  await mkdir(bin);
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Lays out /sys/class/drm/<card>/device/{vendor,device,mem_info_vram_total} like the kernel does. */
async function card(name: string, vendor: string, vramBytes?: number): Promise<void> {
  const dev = join(sys, 'class', 'drm', name, 'device');
  await mkdir(dev, { recursive: true });
  await writeFile(join(dev, 'vendor'), `${vendor}\n`);
  await writeFile(join(dev, 'device'), '0x744c\n');
  if (vramBytes !== undefined) await writeFile(join(dev, 'mem_info_vram_total'), `${vramBytes}\n`);
}

async function tool(name: string, script: string): Promise<void> {
  await writeFile(join(bin, name), `#!/bin/sh\n${script}\n`);
  await chmod(join(bin, name), 0o755);
}

/** The fake flm behind a /bin/sh wrapper, so the test PATH needs nothing but `bin`. */
async function flmTool(): Promise<void> {
  await tool('flm', `exec "${process.execPath}" "${FAKE_FLM}" "$@"`);
}

const probe = (ramBytes = 32 * GiB) => probeHardware({ sysfsRoot: sys, path: bin, ramBytes });

describe('probeHardware', () => {
  it('finds GPUs in /sys/class/drm by PCI vendor, skipping connectors', async () => {
    await card('card0', '0x1002', 16 * GiB);
    await mkdir(join(sys, 'class', 'drm', 'card0-DP-1'), { recursive: true });
    await card('card1', '0x8086');
    const p = await probe();
    expect(p.gpus).toEqual([
      { vendor: 'amd', vendorId: '0x1002', deviceId: '0x744c', card: 'card0', vramBytes: 16 * GiB, source: 'sysfs' },
      { vendor: 'intel', vendorId: '0x8086', deviceId: '0x744c', card: 'card1', vramBytes: undefined, source: 'sysfs' },
    ]);
    expect(p.devices).toEqual(['gpu-vulkan', 'cpu']);
    expect(p.npu.present).toBe(false);
    expect(p.ramBytes).toBe(32 * GiB);
  });

  it('offers gpu-rocm when rocm-smi is on PATH and takes VRAM from it when sysfs has none', async () => {
    await card('card0', '0x1002');
    await tool('rocm-smi', `echo '{"card0": {"VRAM Total Memory (B)": "8573157376", "VRAM Total Used Memory (B)": "1"}}'`);
    const p = await probe();
    expect(p.gpus[0].vramBytes).toBe(8573157376);
    expect(p.devices).toEqual(['gpu-rocm', 'gpu-vulkan', 'cpu']);
    expect(p.tools['rocm-smi']).toBe(join(bin, 'rocm-smi'));
  });

  it('reads NVIDIA names and VRAM from nvidia-smi, also when /sys has no cards (containers)', async () => {
    await tool('nvidia-smi', `echo "NVIDIA GeForce RTX 3090, 24576"`);
    let p = await probe();
    expect(p.gpus).toEqual([{ vendor: 'nvidia', vendorId: '0x10de', card: 'nvidia0', name: 'NVIDIA GeForce RTX 3090', vramBytes: 24 * GiB, source: 'nvidia-smi' }]);
    expect(p.devices).toEqual(['gpu-cuda', 'gpu-vulkan', 'cpu']);
    await card('card0', '0x10de');
    p = await probe();
    expect(p.gpus).toMatchObject([{ card: 'card0', source: 'sysfs', name: 'NVIDIA GeForce RTX 3090', vramBytes: 24 * GiB }]);
  });

  it('ignores a vendor tool that fails', async () => {
    await card('card0', '0x10de');
    await tool('nvidia-smi', 'echo "NVIDIA-SMI has failed" >&2; exit 9');
    const p = await probe();
    expect(p.gpus[0].vramBytes).toBeUndefined();
  });

  it('sees an NPU when the flm binary runs, and none when it fails or is absent', async () => {
    expect((await probe()).npu).toEqual({ present: false });
    await flmTool();
    const p = await probe();
    expect(p.npu).toEqual({ present: true, runtime: 'FLM v0.9.99 (fake)' });
    expect(p.devices).toEqual(['cpu', 'npu']);
    await tool('flm', 'echo "[ERROR] No NPU device found" >&2; exit 1');
    expect((await probe()).npu.present).toBe(false);
    await flmTool();
    expect((await probeHardware({ sysfsRoot: sys, path: '', flmBin: join(bin, 'flm') })).npu.present).toBe(true);
  });
});

function fakeProbe(p: Partial<HardwareProbe>): HardwareProbe {
  return { ramBytes: 32 * GiB, cpuCount: 8, gpus: [], npu: { present: false }, tools: {}, devices: ['cpu'], ...p };
}

describe('suggestSlots', () => {
  it('puts the largest fitting chat model on the GPU, an embedder beside it and an FLM tag on the NPU', async () => {
    await card('card0', '0x1002', 16 * GiB);
    await tool('rocm-smi', 'echo "{}"');
    await flmTool();
    const suggestions = suggestSlots(await probe(32 * GiB), CURATED_CATALOGUE);
    expect(suggestions.map((s) => [s.config.slot.name, s.config.slot.port, s.config.slot.device, s.config.model.default])).toEqual([
      ['primary', 8081, 'gpu-rocm', 'qwen3-4b-q4_k_m'],
      ['embed', 8082, 'gpu-rocm', 'bge-base-en-v1.5-q4_k_m'],
      ['npu', 8083, 'npu', 'qwen3:4b'],
    ]);
    for (const s of suggestions) {
      expect(() => serializeSlotConfig(s.config)).not.toThrow();
      expect(() => validateAssignment(s.entry, { device: s.config.slot.device, backend: s.config.slot.backend })).not.toThrow();
      expect(s.reason).toContain(s.entry.display_name);
    }
  });

  it('fits a CPU-only box in half its RAM and skips the NPU slot without an NPU', () => {
    const suggestions = suggestSlots(fakeProbe({ ramBytes: 4 * GiB }), CURATED_CATALOGUE);
    expect(suggestions.map((s) => s.config.slot.name)).toEqual(['primary', 'embed']);
    const primary = suggestions[0];
    expect(primary.config.slot.device).toBe('cpu');
    expect(primary.entry.vram_gb_min).toBeLessThanOrEqual(2);
    expect(primary.entry.capability).toBe('chat');
  });

  it('suggests nothing for a slot when nothing fits', () => {
    const suggestions = suggestSlots(fakeProbe({ ramBytes: 1 * GiB }), CURATED_CATALOGUE);
    expect(suggestions.map((s) => s.config.slot.name)).toEqual(['embed']);
  });
});

describe('validateAssignment', () => {
  const gguf = findCatalogueEntry('qwen3-4b-q4_k_m')!;
  const flmTag = findCatalogueEntry('qwen3:4b')!;

  const refusal = (fn: () => void): FerryError => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(FerryError);
      return err as FerryError;
    }
    throw new Error('expected a refusal');
  };

  it('serves a GGUF with llama.cpp on GPUs and the CPU only', () => {
    for (const device of ['gpu-rocm', 'gpu-vulkan', 'gpu-cuda', 'cpu'] as const) expect(() => validateAssignment(gguf, { device, backend: 'llama.cpp' })).not.toThrow();
    const onNpu = refusal(() => validateAssignment(gguf, { device: 'npu', slot: 'npu' }));
    expect(onNpu.code).toBe('slot.unservable');
    expect(onNpu.message).toContain('slot "npu"');
    expect(refusal(() => validateAssignment(gguf, { device: 'cpu', backend: 'flm' })).code).toBe('slot.unservable');
  });

  it('serves an FLM tag on the npu only', () => {
    expect(() => validateAssignment(flmTag, { device: 'npu', backend: 'flm' })).not.toThrow();
    expect(() => validateAssignment(flmTag, { device: 'npu' })).not.toThrow();
    expect(refusal(() => validateAssignment(flmTag, { device: 'gpu-vulkan' })).message).toMatch(/only on the NPU/);
    expect(refusal(() => validateAssignment(flmTag, { device: 'npu', backend: 'llama.cpp' })).code).toBe('slot.unservable');
  });

  it('reads registry entries: FLM by metadata.runtime, GGUF by path, and refuses other formats', () => {
    const flmEntry = { id: 'qwen3:4b', path: '/flm/Qwen3-4B-NPU2', capabilities: ['chat'], backends: ['npu'], metadata: { runtime: 'flm' } };
    expect(() => validateAssignment(flmEntry, { device: 'npu' })).not.toThrow();
    expect(() => validateAssignment(flmEntry, { device: 'cpu' })).toThrow(FerryError);
    expect(() => validateAssignment({ id: 'local-model', path: '/m/model-Q4_K_M.GGUF' }, { device: 'cpu' })).not.toThrow();
    expect(refusal(() => validateAssignment({ id: 'st', path: '/m/model.safetensors' }, { device: 'gpu-cuda' })).message).toMatch(/only GGUF files and FLM tags/);
  });
});
