import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import {
  assertSlotName,
  listSlotConfigs,
  readSlotConfig,
  updateSlotConfig,
  writeSlotConfig,
  type SlotConfig,
} from '../../src/slots/slot-config.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-slots-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const HAL0_PRIMARY = `# written by hal0
[slot]
name = "primary"
port = 8081
device = "gpu-vulkan"
backend = "llama.cpp"
idle_timeout_s = 300
autoload = true
priority = 10
hal0_only = "kept"

[model]
default = "qwen2.5-0.5b-instruct"
context_size = 8192

[server]
extra_args = ["--flash-attn", "--jinja"]

[server.env]
GGML_VK_VISIBLE_DEVICES = "0"

[hal0_future]
answer = 42
`;

async function errorOf(p: Promise<unknown>): Promise<FerryError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(FerryError);
  return err as FerryError;
}

describe('slot config files', () => {
  it('reads hal0 slot files and keeps keys Ferry does not know through a write', async () => {
    await writeFile(join(dir, 'primary.toml'), HAL0_PRIMARY);
    const slot = await readSlotConfig(dir, 'primary');
    expect(slot.slot).toMatchObject({ name: 'primary', port: 8081, device: 'gpu-vulkan', backend: 'llama.cpp', idle_timeout_s: 300, autoload: true, priority: 10 });
    expect(slot.model).toEqual({ default: 'qwen2.5-0.5b-instruct', context_size: 8192 });
    expect(slot.server).toEqual({ extra_args: ['--flash-attn', '--jinja'], env: { GGML_VK_VISIBLE_DEVICES: '0' } });

    await writeSlotConfig(dir, { ...slot, model: { ...slot.model, default: 'qwen3-4b' } });
    const again = await readSlotConfig(dir, 'primary');
    expect(again.slot.hal0_only).toBe('kept');
    expect(again.hal0_future).toEqual({ answer: 42 });
    expect(again.model.default).toBe('qwen3-4b');
    expect(again.server.env).toEqual({ GGML_VK_VISIBLE_DEVICES: '0' });
    const text = await readFile(join(dir, 'primary.toml'), 'utf8');
    expect(text.indexOf('[slot]')).toBeLessThan(text.indexOf('[model]'));
  });

  it('writes atomically: no temp files are left and readers never see a partial file', async () => {
    const base: SlotConfig = { slot: { name: 'embed', port: 8082, device: 'cpu' }, model: { default: 'nomic-embed' }, server: {} };
    await Promise.all(Array.from({ length: 20 }, (_, i) => writeSlotConfig(dir, { ...base, model: { default: `m${i}` } })));
    expect(await readdir(dir)).toEqual(['embed.toml']);
    expect((await readSlotConfig(dir, 'embed')).model.default).toMatch(/^m\d+$/);
  });

  it('serialises read-modify-write through updateSlotConfig so no change is lost', async () => {
    await writeSlotConfig(dir, { slot: { name: 'primary', port: 8081, device: 'cpu', priority: 0 }, model: {}, server: {} });
    await Promise.all(
      Array.from({ length: 8 }, () =>
        updateSlotConfig(dir, 'primary', (c) => {
          c.slot.priority = (c.slot.priority ?? 0) + 1;
        }),
      ),
    );
    expect((await readSlotConfig(dir, 'primary')).slot.priority).toBe(8);
    expect((await errorOf(updateSlotConfig(dir, 'primary', (c) => ({ ...c, slot: { ...c.slot, name: 'other' } })))).code).toBe('slot.invalid');
  });

  it('lists slots sorted and skips files that are not slots', async () => {
    await writeSlotConfig(dir, { slot: { name: 'utility', port: 8083, device: 'npu' }, model: {}, server: {} });
    await writeSlotConfig(dir, { slot: { name: 'primary', port: 8081, device: 'gpu-rocm' }, model: {}, server: {} });
    await writeFile(join(dir, 'README.md'), 'not a slot');
    await writeFile(join(dir, 'Bad Name.toml'), 'x = 1');
    expect((await listSlotConfigs(dir)).map((s) => s.slot.name)).toEqual(['primary', 'utility']);
    expect(await listSlotConfigs(join(dir, 'missing'))).toEqual([]);
  });

  it.each([
    ['port = 80', 'slot.port'],
    ['port = 8201', 'slot.port'],
    ['device = "tpu"', 'slot.device'],
    ['idle_timeout_s = -1', 'slot.idle_timeout_s'],
    ['autoload = "yes"', 'slot.autoload'],
  ])('refuses %s naming the key', async (line, key) => {
    const [k] = line.split(' = ');
    const text = HAL0_PRIMARY.replace(new RegExp(`^${k} = .*$`, 'm'), line);
    await writeFile(join(dir, 'primary.toml'), text);
    const err = await errorOf(readSlotConfig(dir, 'primary'));
    expect(err.code).toBe('slot.invalid');
    expect(err.message).toContain(key);
    expect(err.message).toContain('primary.toml');
  });

  it('refuses bad TOML with the line, a name that does not match the file, and a missing slot', async () => {
    await writeFile(join(dir, 'primary.toml'), '[slot]\nname = "primary"\nport = \n');
    expect((await errorOf(readSlotConfig(dir, 'primary'))).message).toMatch(/primary\.toml:3:/);
    await writeFile(join(dir, 'primary.toml'), HAL0_PRIMARY.replace('name = "primary"', 'name = "other"'));
    expect((await errorOf(readSlotConfig(dir, 'primary'))).code).toBe('slot.invalid');
    expect((await errorOf(readSlotConfig(dir, 'ghost'))).code).toBe('slot.not_found');
  });

  it('validates slot names (they become file names)', async () => {
    for (const good of ['primary', 'embed-2', 'a', 'x_y', 'a'.repeat(32)]) expect(assertSlotName(good)).toBe(good);
    for (const bad of ['', 'Primary', '-x', '_x', '../etc', 'a/b', 'a'.repeat(33), 'a.b']) expect(() => assertSlotName(bad)).toThrow(FerryError);
    expect((await errorOf(readSlotConfig(dir, '../../etc/passwd'))).code).toBe('slot.invalid');
    await expect(writeSlotConfig(dir, { slot: { name: 'A', port: 8081, device: 'cpu' }, model: {}, server: {} })).rejects.toThrow(/slot name/);
  });
});
