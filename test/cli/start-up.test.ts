import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterAll, describe, expect, it } from 'vitest';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(REPO_ROOT, 'bin/ferry.js');
const VERSION = (JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

describe('start-up: a built checkout runs without building again', () => {
  const scratch: string[] = [];
  afterAll(async () => {
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  });

  it('ferry --version / -V print the version from package.json, and --help lists the option', async () => {
    for (const flag of ['--version', '-V']) {
      const r = await execa(process.execPath, [BIN, flag], { reject: false });
      expect(r.exitCode).toBe(0);
      expect(r.stdout).toBe(VERSION);
    }
    const help = await execa(process.execPath, [BIN, '--help'], { reject: false });
    expect(help.stdout).toMatch(/-V, --version\s+print the version/);
    // Commander's own --version path (with another flag beside it) answers the same.
    const main = await execa(process.execPath, [join(REPO_ROOT, 'dist/src/cli/main.js'), '--version'], { reject: false });
    expect(main.stdout).toBe(VERSION);
  });

  it('works when installed on the PATH with `npm install -g .` (a symlinked bin) from another directory', async () => {
    const prefix = await mkdtemp(join(tmpdir(), 'ferry15-global-'));
    scratch.push(prefix);
    const home = join(prefix, 'home');
    await execa('npm', ['install', '-g', '.', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: REPO_ROOT });
    const linked = join(prefix, 'bin', 'ferry');
    expect((await stat(linked)).isFile()).toBe(true);
    const env = { PATH: `${join(prefix, 'bin')}:${process.env.PATH}`, FERRY_HOME: home, HOME: prefix };
    const version = await execa('ferry', ['--version'], { cwd: tmpdir(), env, extendEnv: false, reject: false });
    expect(version.stdout).toBe(VERSION);
    const list = await execa('ferry', ['model', 'list'], { cwd: tmpdir(), env, extendEnv: false, reject: false });
    expect(list.stderr).toBe('');
    expect(list.stdout).toBe('no models in the registry');
  });

  it('the staleness check of npm start does not build when dist/ is newer than every source', async () => {
    const info = join(REPO_ROOT, 'dist/tsconfig.tsbuildinfo');
    const before = (await stat(info)).mtimeMs;
    const r = await execa(process.execPath, [join(REPO_ROOT, 'scripts/ensure-built.mjs')], { reject: false });
    expect(r.exitCode).toBe(0);
    expect(r.stderr).toBe(''); // it says "rebuilding" whenever it runs tsc
    expect((await stat(info)).mtimeMs).toBe(before);
  });

  it('package.json: install builds (prepare), start and worker only check staleness', async () => {
    const pkg = JSON.parse(await readFile(join(REPO_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(pkg.scripts.prepare).toMatch(/^tsc /);
    for (const name of ['start', 'worker']) {
      expect(pkg.scripts[name]).toMatch(/^node scripts\/ensure-built\.mjs && node /);
      expect(pkg.scripts[name]).not.toMatch(/tsc|npm run build/);
    }
  });
});
