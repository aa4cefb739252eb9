import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { childEnv, makeTempHome } from '../support/temp-home.js';
import { REPO_ROOT } from '../support/worker-process.js';

const CLI = join(REPO_ROOT, 'dist/src/cli/main.js');
const FAKE_FLM = join(REPO_ROOT, 'test/fixtures/fake-flm');
const GiB = 1024 ** 3;

describe('ferry init', () => {
  let temp: Awaited<ReturnType<typeof makeTempHome>>;
  let sys: string;
  const ferry = (args: string[]) => execa('node', [CLI, ...args], { env: childEnv(temp.env), extendEnv: false, reject: false });
  beforeEach(async () => {
    temp = await makeTempHome();
    // A fake sysfs with one AMD card of 16 GiB VRAM, and the fake flm as the NPU runtime.
    sys = join(temp.home, 'sys');
    const dev = join(sys, 'class', 'drm', 'card0', 'device');
    await mkdir(dev, { recursive: true });
    await writeFile(join(dev, 'vendor'), '0x1002\n');
    await writeFile(join(dev, 'mem_info_vram_total'), `${16 * GiB}\n`);
    await writeFile(join(temp.home, 'config.toml'), `flm_bin = "${FAKE_FLM}"\n`);
  });
  afterEach(async () => temp.cleanup());

  it('--dry-run prints the suggested slot files and writes nothing', async () => {
    const r = await ferry(['init', '--dry-run', '--sysfs', sys]);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/GPUs: amd \(card0, 16\.0 GiB\); NPU: FLM v0\.9\.99 \(fake\)/);
    expect(r.stdout).toContain(`would write ${join(temp.config.slotsDir, 'primary.toml')}`);
    expect(r.stdout).toContain(`would write ${join(temp.config.slotsDir, 'npu.toml')}`);
    expect(r.stdout).toMatch(/^ {2}device = "gpu-vulkan"$/m);
    expect(r.stdout).toMatch(/^ {2}device = "npu"$/m);
    expect(r.stdout).toContain('ferry slot swap primary --model ');
    expect(await readdir(temp.config.slotsDir).catch(() => [])).toEqual([]);
  });

  it('writes the files, refuses to overwrite them without --force, and overwrites with it', async () => {
    const first = await ferry(['init', '--sysfs', sys]);
    expect(first.exitCode, first.stderr).toBe(0);
    expect((await readdir(temp.config.slotsDir)).sort()).toEqual(['embed.toml', 'npu.toml', 'primary.toml']);
    const primary = join(temp.config.slotsDir, 'primary.toml');
    expect(await readFile(primary, 'utf8')).toMatch(/^\[slot\]\nname = "primary"\nport = 8081\ndevice = "gpu-vulkan"/);

    await writeFile(primary, (await readFile(primary, 'utf8')).replace('idle_timeout_s = 300', 'idle_timeout_s = 42'));
    const again = await ferry(['init', '--sysfs', sys]);
    expect(again.exitCode).toBe(1);
    expect(again.stderr).toMatch(/^ferry: slot\.invalid: .*primary\.toml.* exist/m);
    expect(again.stderr).toContain('--force');
    expect(await readFile(primary, 'utf8')).toContain('idle_timeout_s = 42');

    const forced = await ferry(['init', '--force', '--sysfs', sys]);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(forced.stdout).toContain(`overwrote ${primary}`);
    expect(await readFile(primary, 'utf8')).toContain('idle_timeout_s = 300');
  });
});
