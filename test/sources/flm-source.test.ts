import { chmod, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { FlmSource, type FlmProgress, type FlmSourceOptions } from '../../src/sources/flm/flm-source.js';
import { FlmProgressTracker, parseFlmPullLine } from '../../src/sources/flm/flm-pull-progress.js';
import { LineSplitter } from '../../src/util/line-splitter.js';
import { parseFlmList } from '../../src/sources/flm/flm-list.js';
import { flmRegistryEntry } from '../../src/sources/flm/flm-registry-entry.js';
import { expectFerryError } from '../support/expect-ferry-error.js';
import { isProcessAlive } from '../../src/util/process-alive.js';

const FAKE_FLM = resolve('test/fixtures/fake-flm');
const MiB = 1024 * 1024;
const QWEN_SIZE = 2048 + 3 * MiB + 512 * 1024;

let dir: string;
let modelPath: string;
let log: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-flm-'));
  modelPath = join(dir, 'models');
  log = join(dir, 'invocations.log');
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function source(env: Record<string, string> = {}, extra: Partial<FlmSourceOptions> = {}): FlmSource {
  return new FlmSource({ flmBin: FAKE_FLM, flmModelPath: modelPath, env: { FAKE_FLM_LOG: log, ...env }, ...extra });
}

async function invocations(): Promise<string[][]> {
  try {
    return (await readFile(log, 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as string[]);
  } catch {
    return [];
  }
}



describe('flm output parsing', () => {
  it('splits on \\r and \\n, strips ANSI, and keeps a line cut across chunks', () => {
    const lines: string[] = [];
    const s = new LineSplitter((l) => lines.push(l));
    s.push('[FLM]  Downloading 1/2: model.q4nx\n\r\x1b[K[FLM]  Downloading: 10.0% (0.3MB / 3');
    s.push('.0MB)\r\x1b[K[FLM]  Downloading: 100.0% (3.0MB / 3.0MB)\n[FLM]  Model downloaded successfully!');
    s.end();
    expect(lines).toEqual([
      '[FLM]  Downloading 1/2: model.q4nx',
      '[FLM]  Downloading: 10.0% (0.3MB / 3.0MB)',
      '[FLM]  Downloading: 100.0% (3.0MB / 3.0MB)',
      '[FLM]  Model downloaded successfully!',
    ]);
  });

  it('classifies FLM lines', () => {
    expect(parseFlmPullLine('[FLM]  Downloading: 38.8% (253.0MB / 652.1MB)')).toEqual({
      kind: 'progress',
      percent: 38.8,
      doneBytes: Math.round(253 * MiB),
      totalBytes: Math.round(652.1 * MiB),
    });
    expect(parseFlmPullLine('[FLM]  Downloading 2/3: tokenizer.json')).toEqual({ kind: 'file', index: 2, count: 3, file: 'tokenizer.json' });
    expect(parseFlmPullLine('[FLM]  Downloading 3 missing files...').kind).toBe('other');
    expect(parseFlmPullLine('[FLM]  Name: Qwen3-0.6B-NPU2')).toEqual({ kind: 'name', name: 'Qwen3-0.6B-NPU2' });
    expect(parseFlmPullLine('[ERROR] HTTP 503')).toEqual({ kind: 'error', message: 'HTTP 503' });
    expect(parseFlmPullLine('[FLM]  Model is already downloaded.').kind).toBe('already');
    expect(parseFlmPullLine('[FLM]  Model downloaded successfully!').kind).toBe('success');
  });

  it('skips [WARNING] lines before the list JSON and rejects output without models', () => {
    const tags = parseFlmList('[WARNING] old firmware\n{"models":[{"name":"a:1b","model":"a:1b","size":5,"files":["x"],"installed":true}]}');
    expect(tags.map((t) => [t.tag, t.size, t.installed, t.files])).toEqual([['a:1b', 5, true, ['x']]]);
    expect(() => parseFlmList('[WARNING] only noise\n')).toThrow(FerryError);
    expect(() => parseFlmList('{"other":[]}')).toThrow(/models/);
  });
});

describe('FlmProgressTracker', () => {
  it('adds finished files to the current one when the percentage restarts', () => {
    const t = new FlmProgressTracker(10 * MiB);
    t.onEvent({ kind: 'file', index: 1, count: 2, file: 'a' });
    t.onEvent({ kind: 'progress', percent: 50, doneBytes: 2 * MiB, totalBytes: 4 * MiB });
    expect(t.snapshot().bytesDone).toBe(2 * MiB);
    t.onEvent({ kind: 'progress', percent: 100, doneBytes: 4 * MiB, totalBytes: 4 * MiB });
    t.onEvent({ kind: 'file', index: 2, count: 2, file: 'b' });
    t.onEvent({ kind: 'progress', percent: 0, doneBytes: 0, totalBytes: 6 * MiB });
    expect(t.snapshot()).toMatchObject({ bytesDone: 4 * MiB, fileIndex: 2, fileCount: 2, file: 'b' });
    t.onEvent({ kind: 'progress', percent: 50, doneBytes: 3 * MiB, totalBytes: 6 * MiB });
    expect(t.snapshot().bytesDone).toBe(7 * MiB);
  });

  it('takes the disk size when it is ahead, never goes backwards, and never passes the total', () => {
    const t = new FlmProgressTracker(10 * MiB);
    t.onEvent({ kind: 'file', index: 1, count: 1, file: 'a' });
    t.onEvent({ kind: 'progress', percent: 10, doneBytes: 1 * MiB, totalBytes: 8 * MiB });
    t.onDiskSize(3 * MiB); // files that were already present
    expect(t.snapshot().bytesDone).toBe(3 * MiB);
    t.onDiskSize(2 * MiB); // a temp file renamed away
    expect(t.snapshot().bytesDone).toBe(3 * MiB);
    t.onDiskSize(50 * MiB);
    expect(t.snapshot().bytesDone).toBe(10 * MiB);
  });
});

describe('FlmSource tags', () => {
  it('lists every tag, skipping the [WARNING] noise, and reuses the list', async () => {
    const flm = source();
    const tags = await flm.listTags();
    expect(tags.map((t) => t.tag).sort()).toEqual(['embed-gemma:300m', 'llama3.2:1b', 'qwen3:0.6b']);
    expect(await flm.isFlmTag('qwen3:0.6b')).toBe(true);
    expect(await flm.isFlmTag('llama3.2:1b')).toBe(true);
    expect(await flm.isFlmTag('nope:1b')).toBe(false);
    expect(await flm.isFlmTag('qwen3')).toBe(false);
    expect(await invocations()).toEqual([['list', '-j', '--filter', 'all']]);
    await flm.listTags({ refresh: true });
    expect(await invocations()).toHaveLength(2);
  });

  it('lists again once the cache has expired', async () => {
    const flm = source({}, { listCacheMs: 0 });
    await flm.listTags();
    await flm.listTags();
    expect(await invocations()).toHaveLength(2);
  });

  it('reports a tag size and files', async () => {
    const info = await source().tagInfo('qwen3:0.6b');
    expect(info.size).toBe(QWEN_SIZE);
    expect(info.files).toEqual(['config.json', 'model.q4nx', 'tokenizer.json']);
    expect(info.installed).toBe(false);
    expect((await expectFerryError(source().tagInfo('nope:1b'))).code).toBe('source.not_found');
  });

  it('turns a missing binary into source.flm_unavailable with a hint', async () => {
    const flm = new FlmSource({ flmBin: join(dir, 'no-such-flm'), flmModelPath: modelPath });
    const err = await expectFerryError(flm.listTags());
    expect(err.code).toBe('source.flm_unavailable');
    expect(err.hint).toMatch(/flm_bin/);
    expect(await flm.isFlmTag('qwen3:0.6b')).toBe(false);
    expect((await expectFerryError(flm.pull('qwen3:0.6b'))).code).toBe('source.flm_unavailable');
  });

  it('turns a failing list into source.flm_failed with the error line, and does not cache it', async () => {
    const bin = join(dir, 'broken-flm');
    await writeFile(bin, '#!/bin/sh\necho "[ERROR] No NPU device found" >&2\nexit 1\n');
    await chmod(bin, 0o755);
    const flm = new FlmSource({ flmBin: bin });
    const err = await expectFerryError(flm.listTags());
    expect(err.code).toBe('source.flm_failed');
    expect(err.message).toContain('No NPU device found');
    await writeFile(bin, `#!/bin/sh\nexec ${FAKE_FLM} "$@"\n`);
    expect((await flm.listTags()).length).toBe(3);
  });
});

describe('FlmSource.pull', () => {
  it('pulls a tag into FLM_MODEL_PATH with whole-model progress across per-file restarts', async () => {
    const seen: FlmProgress[] = [];
    const flm = source({ FAKE_FLM_SPEED: String(8 * MiB) }, { progressIntervalMs: 0, diskSampleMs: 20 });
    const result = await flm.pull('qwen3:0.6b', { onProgress: (p) => seen.push(p) });

    expect(result).toEqual({ tag: 'qwen3:0.6b', path: join(modelPath, 'Qwen3-0.6B-NPU2'), bytesTotal: QWEN_SIZE, alreadyPresent: false });
    expect((await readdir(result.path)).sort()).toEqual(['config.json', 'model.q4nx', 'tokenizer.json']);
    expect((await stat(join(result.path, 'model.q4nx'))).size).toBe(3 * MiB);

    const bytes = seen.map((p) => p.bytesDone);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(seen.at(-1)).toMatchObject({ bytesDone: QWEN_SIZE, bytesTotal: QWEN_SIZE, fileCount: 3, fileIndex: 3, file: 'tokenizer.json' });
    // Progress during the third file counts the first two: the per-file percentage restarted.
    const third = seen.filter((p) => p.fileIndex === 3 && p.bytesDone < QWEN_SIZE);
    expect(third.length).toBeGreaterThan(0);
    expect(Math.min(...third.map((p) => p.bytesDone))).toBeGreaterThanOrEqual(2048 + 3 * MiB - 0.05 * MiB);
    // Every file was reported; a disk-size sample may come before FLM names the first file (index 0).
    expect(new Set(seen.map((p) => p.fileIndex).filter((i) => i > 0))).toEqual(new Set([1, 2, 3]));
    expect(seen.filter((p) => p.fileIndex === 0).every((p) => p.bytesDone < 2048 + 0.1 * MiB)).toBe(true);

    const entry = flmRegistryEntry(result, await flm.tagInfo('qwen3:0.6b'), new Date(0));
    expect(entry).toEqual({
      id: 'qwen3:0.6b',
      path: join(modelPath, 'Qwen3-0.6B-NPU2'),
      name: 'qwen3:0.6b',
      capabilities: ['chat'],
      backends: ['npu'],
      metadata: { runtime: 'flm', family: 'qwen3', flm_label: ['reasoning'] },
      created_at: '1970-01-01T00:00:00.000Z',
      size_bytes: QWEN_SIZE,
      quant: 'Q4_1',
      files: ['config.json', 'model.q4nx', 'tokenizer.json'].map((f) => ({ path: join(modelPath, 'Qwen3-0.6B-NPU2', f) })),
    });
  });

  it('reports progress at most twice a second, and the final value always', async () => {
    const seen: Array<{ at: number; bytes: number }> = [];
    const flm = source({ FAKE_FLM_SPEED: String(2 * MiB), FAKE_FLM_TICK_MS: '20' });
    await flm.pull('llama3.2:1b', { onProgress: (p) => seen.push({ at: performance.now(), bytes: p.bytesDone }) });
    expect(seen.length).toBeGreaterThan(1);
    const gaps = seen.slice(1, -1).map((s, i) => s.at - seen[i].at);
    for (const gap of gaps) expect(gap).toBeGreaterThanOrEqual(499);
    expect(seen.at(-1)!.bytes).toBe(1500 + 2 * MiB + 300 * 1024);
  });

  it('says so when FLM already has the model, and --force downloads again', async () => {
    const flm = source();
    await flm.pull('embed-gemma:300m');
    const again = await flm.pull('embed-gemma:300m');
    expect(again.alreadyPresent).toBe(true);
    expect(again.path).toBe(join(modelPath, 'EmbeddingGemma-300M-NPU2'));
    expect((await flm.tagInfo('embed-gemma:300m')).installed).toBe(true);
    const forced = await flm.pull('embed-gemma:300m', { force: true });
    expect(forced.alreadyPresent).toBe(false);
    expect((await invocations()).filter((a) => a[0] === 'pull').at(-1)).toEqual(['pull', 'embed-gemma:300m', '--force']);
  });

  it('refuses an unknown tag before running flm pull (FLM would pull a default model)', async () => {
    const flm = source();
    const err = await expectFerryError(flm.pull('mystery:7b'));
    expect(err.code).toBe('source.not_found');
    expect((await invocations()).some((a) => a[0] === 'pull')).toBe(false);
    await expect(stat(modelPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('turns [ERROR] lines and a non-zero exit into source.flm_failed carrying the lines', async () => {
    const flm = source({ FAKE_FLM_FAIL: '1' });
    const err = await expectFerryError(flm.pull('qwen3:0.6b'));
    expect(err.code).toBe('source.flm_failed');
    expect(err.message).toContain('Model download failed');
    expect(err.details?.exit_code).toBe(1);
    expect(err.details?.lines).toEqual(['Failed to download model.q4nx: HTTP 503 Service Unavailable', 'Model download failed']);
  });

  it('cancels with SIGTERM and leaves no process behind', async () => {
    const pidFile = join(dir, 'flm.pid');
    const flm = source({ FAKE_FLM_SPEED: String(64 * 1024), FAKE_FLM_PID_FILE: pidFile }, { progressIntervalMs: 0 });
    const ac = new AbortController();
    const err = await expectFerryError(flm.pull('qwen3:0.6b', { signal: ac.signal, onProgress: (p) => p.fileIndex === 2 && ac.abort() }));
    expect(err.code).toBe('pull.cancelled');
    const pid = Number(await readFile(pidFile, 'utf8'));
    expect(isProcessAlive(pid)).toBe(false);
    expect((err.cause as { isForcefullyTerminated?: boolean }).isForcefullyTerminated).toBe(false);
  });

  it('follows with SIGKILL when flm ignores SIGTERM', async () => {
    const pidFile = join(dir, 'flm.pid');
    const flm = source(
      { FAKE_FLM_SPEED: String(64 * 1024), FAKE_FLM_PID_FILE: pidFile, FAKE_FLM_IGNORE_TERM: '1' },
      { progressIntervalMs: 0, killGraceMs: 300 },
    );
    const ac = new AbortController();
    const err = await expectFerryError(flm.pull('qwen3:0.6b', { signal: ac.signal, onProgress: () => ac.abort() }));
    expect(err.code).toBe('pull.cancelled');
    expect((err.cause as { isForcefullyTerminated?: boolean }).isForcefullyTerminated).toBe(true);
    expect(isProcessAlive(Number(await readFile(pidFile, 'utf8')))).toBe(false);
  });

  it('does not start flm for a signal that is already aborted', async () => {
    const ac = new AbortController();
    ac.abort();
    expect((await expectFerryError(source().pull('qwen3:0.6b', { signal: ac.signal }))).code).toBe('pull.cancelled');
    expect((await invocations()).some((a) => a[0] === 'pull')).toBe(false);
  });
});
