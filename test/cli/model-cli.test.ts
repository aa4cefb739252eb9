import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FerryConfig } from '../../src/config/load-config.js';
import { childEnv, makeTempHome } from '../support/temp-home.js';

const MAIN = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));

let env: Record<string, string>;
let config: FerryConfig;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ env, config, cleanup } = await makeTempHome());
});
afterEach(async () => {
  await cleanup();
});

function ferry(...args: string[]) {
  return execa(process.execPath, [MAIN, ...args], { env: childEnv(env), extendEnv: false, reject: false });
}

async function stage(name: string, content: string): Promise<string> {
  const path = join(config.modelRoot, 'staged', name);
  await mkdir(join(config.modelRoot, 'staged'), { recursive: true });
  await writeFile(path, content);
  return path;
}

/** A failed command: non-zero exit, and stderr's first line is `ferry: <code>: <message>` (a hint may follow, indented). */
function expectFailure(r: { exitCode?: number; stderr: string; stdout: string }, code: string): string {
  expect(r.exitCode).not.toBe(0);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines[0]).toMatch(new RegExp(`^ferry: ${code.replace('.', '\\.')}: \\S`));
  for (const extra of lines.slice(1)) expect(extra).toMatch(/^ {2}hint: /);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(r.stdout).toBe('');
  return lines[0];
}

describe('ferry model (child process, temp FERRY_HOME)', () => {
  it('add, list (table and --json), show, rm', async () => {
    const a = await stage('alpha-q4.gguf', 'alpha weights');
    const b = await stage('beta-q8.gguf', 'beta weights, longer');
    const added = await ferry('model', 'add', 'alpha-q4', '--path', a, '--hf-repo', 'org/alpha-GGUF', '--hf-file', 'alpha-q4.gguf');
    expect(added.exitCode).toBe(0);
    const sha = createHash('sha256').update('alpha weights').digest('hex');
    expect(added.stdout).toBe(`added alpha-q4 (13 B, sha256 ${sha})`);
    expect((await ferry('model', 'add', 'beta-q8', '--path', b, '--json')).exitCode).toBe(0);

    const table = await ferry('model', 'list');
    expect(table.exitCode).toBe(0);
    const lines = table.stdout.split('\n');
    expect(lines[0]).toMatch(/^ID\s+SIZE\s+BACKENDS\s+SHA256\s+PATH$/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(new RegExp(`^alpha-q4\\s+13 B\\s+llama\\.cpp\\s+${sha.slice(0, 12)}\\s+${a}$`));
    expect(lines[2]).toMatch(/^beta-q8\s+20 B\s+llama\.cpp\s+[0-9a-f]{12}\s+/);
    // columns line up
    expect(lines[1].indexOf('13 B')).toBe(lines[0].indexOf('SIZE'));

    const json = await ferry('model', 'list', '--json');
    const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
    expect(rows.map((r) => r.id)).toEqual(['alpha-q4', 'beta-q8']);
    expect(rows[0]).toMatchObject({ path: a, sha256: sha, size_bytes: 13, hf_repo: 'org/alpha-GGUF', hf_filename: 'alpha-q4.gguf' });

    const show = await ferry('model', 'show', 'alpha-q4');
    expect(show.exitCode).toBe(0);
    expect(show.stdout).toMatch(/^id\s+alpha-q4$/m);
    expect(show.stdout).toMatch(/^size_bytes\s+13 \(13 B\)$/m);
    expect(JSON.parse((await ferry('model', 'show', 'alpha-q4', '--json')).stdout)).toEqual(rows[0]);

    const rm = await ferry('model', 'rm', 'alpha-q4');
    expect(rm.exitCode).toBe(0);
    expect(rm.stdout).toBe('removed alpha-q4'); // staged by the user: the file stays
    await readFile(a);
    expect(JSON.parse((await ferry('model', 'list', '--json')).stdout).map((r: { id: string }) => r.id)).toEqual(['beta-q8']);
  });

  it('an empty registry lists as a message, and as [] with --json', async () => {
    expect((await ferry('model', 'list')).stdout).toBe('no models in the registry');
    expect(JSON.parse((await ferry('model', 'list', '--json')).stdout)).toEqual([]);
  });

  it('errors: non-zero exit and one line `ferry: <code>: <message>`', async () => {
    expectFailure(await ferry('model', 'show', 'missing'), 'model.not_found');
    expectFailure(await ferry('model', 'rm', 'missing'), 'model.not_found');
    expectFailure(await ferry('model', 'show', '../etc/passwd'), 'model.invalid_id');
    expectFailure(await ferry('model', 'add', 'Bad Id', '--path', '/dev/null'), 'model.invalid_id');
    expectFailure(await ferry('model', 'add', 'ghost', '--path', join(config.modelRoot, 'nope.gguf')), 'model.invalid_path');
    const outside = join(config.home, 'outside.gguf');
    await writeFile(outside, 'x');
    expectFailure(await ferry('model', 'add', 'outsider', '--path', outside), 'model.invalid_path');
    const a = await stage('dup.gguf', 'dup');
    expect((await ferry('model', 'add', 'dup', '--path', a)).exitCode).toBe(0);
    expectFailure(await ferry('model', 'add', 'dup', '--path', a), 'model.exists');
  });

  it('a corrupt registry: list fails naming file:line, and add leaves it as it was', async () => {
    const file = join(config.registryDir, 'registry.toml');
    await mkdir(config.registryDir, { recursive: true });
    await writeFile(file, '[models."a"]\npath = "/m/a"\nbroken line\n');
    const line = expectFailure(await ferry('model', 'list'), 'registry.corrupt');
    expect(line).toContain(`${file}:3:`);
    const a = await stage('new.gguf', 'new');
    expectFailure(await ferry('model', 'add', 'new', '--path', a), 'registry.corrupt');
    expect(await readFile(file, 'utf8')).toBe('[models."a"]\npath = "/m/a"\nbroken line\n');
  });

  it('a bad config.toml is config.invalid naming the key', async () => {
    await writeFile(join(config.home, 'config.toml'), 'prot = 8080\n');
    const line = expectFailure(await ferry('model', 'list'), 'config.invalid');
    expect(line).toContain('"prot"');
  });

  it('usage errors exit non-zero without a stack trace', async () => {
    const r = await ferry('model', 'add', 'x');
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain('--path');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
