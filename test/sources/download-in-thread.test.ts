import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { downloadFileInThread } from '../../src/sources/huggingface/download-in-thread.js';
import type { DownloadOptions, DownloadTarget } from '../../src/sources/huggingface/download-file.js';
import { HfClient } from '../../src/sources/huggingface/hf-client.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';

// The thread runs dist/src/sources/huggingface/download-thread.js: build (`npx tsc -p .`) before running.

const REPO = 'acme/thread-GGUF';
const FILE = 'Thread-Q4_K_M.gguf'; // *.gguf: LFS, served through the CDN redirect
const SIZE = 5 * 1024 * 1024 + 3;

/** What a promise rejects with; undefined if it resolves. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

describe('downloadFileInThread', () => {
  let hub: FakeHub;
  let dir: string;
  let client: HfClient;

  beforeEach(async () => {
    hub = await startFakeHub();
    hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 11 }] });
    dir = await mkdtemp(join(tmpdir(), 'ferry-dl-thread-'));
    client = new HfClient({ endpoint: hub.url, token: hub.token });
  });

  afterEach(async () => {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** The target as the pull planner builds it: pinned commit, size and sha256 from a HEAD on resolve. */
  async function targetOf(c: HfClient, repo = REPO, path = FILE): Promise<DownloadTarget> {
    const resolved = await c.resolveFile(repo, 'main', path);
    expect(resolved.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(resolved.commit).toMatch(/^[0-9a-f]{40}$/);
    return { repo, revision: resolved.commit!, path, size: resolved.size, sha256: resolved.sha256 };
  }

  function options(target: DownloadTarget, extra: Partial<DownloadOptions> = {}): DownloadOptions {
    return {
      client,
      target,
      partPath: join(dir, `${target.path}.part`),
      signal: new AbortController().signal,
      retryBaseMs: 20,
      ...extra,
    };
  }

  const cdnGets = () => hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET');

  it('downloads an LFS file on the thread, verifies it, and relays progress', async () => {
    hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 8 * 1024 * 1024 });
    const target = await targetOf(client);
    expect(target.size).toBe(SIZE);
    const progress: number[] = [];
    const opts = options(target, { onBytes: (b) => progress.push(b) });

    const result = await downloadFileInThread(opts);

    const expected = await hub.sha256(REPO, FILE);
    expect(result).toEqual({ bytes: SIZE, sha256: expected, verifiedBy: 'sha256' });
    expect(await sha256Of(opts.partPath)).toBe(expected);
    // ~0.6 s at 8 MiB/s with a message at most every 100 ms: several, each further than the last.
    expect(progress.length).toBeGreaterThanOrEqual(2);
    for (let i = 1; i < progress.length; i++) expect(progress[i]).toBeGreaterThan(progress[i - 1]);
    expect(progress[0]).toBeGreaterThan(0);
    expect(progress.at(-1)).toBeLessThanOrEqual(SIZE);
    expect(cdnGets()).toHaveLength(1);
  });

  it('resumes with a Range request after the connection is cut mid-file', async () => {
    hub.fault(REPO, FILE, { kind: 'cut', afterBytes: 1_000_000 });
    const target = await targetOf(client);
    const events: string[] = [];
    const opts = options(target, { onEvent: (m) => events.push(m) });

    const result = await downloadFileInThread(opts);

    const expected = await hub.sha256(REPO, FILE);
    expect(result).toEqual({ bytes: SIZE, sha256: expected, verifiedBy: 'sha256' });
    expect(await sha256Of(opts.partPath)).toBe(expected);
    expect(events.some((m) => /retrying|resuming/.test(m)), JSON.stringify(events)).toBe(true);
    const gets = cdnGets();
    expect(gets).toHaveLength(2);
    expect(gets[0].range).toBeUndefined();
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(1_000_000);
  });

  it('rejects a wrong sha256 with pull.checksum_mismatch carrying expected/found, and deletes the partial', async () => {
    const target = await targetOf(client);
    const actual = target.sha256!;
    const wrong = `${actual[0] === '0' ? '1' : '0'}${actual.slice(1)}`;
    const opts = options({ ...target, sha256: wrong });

    const err = await rejection(downloadFileInThread(opts));

    expect(err).toBeInstanceOf(FerryError);
    const fe = err as FerryError;
    expect(fe.code).toBe('pull.checksum_mismatch');
    expect(fe.details).toEqual({ expected: wrong, found: actual });
    expect(fe.message).toContain(FILE);
    // The whole file was fetched before the digest was compared.
    expect(cdnGets()).toHaveLength(1);
    expect(existsSync(opts.partPath)).toBe(false);
    expect(existsSync(`${opts.partPath}.json`)).toBe(false);
  });

  it('maps the Hub X-Error-Code of a missing repo, missing file and gated repo to FerryError codes', async () => {
    // Missing repo: the Hub answers 401 RepoNotFound.
    const noRepo = await rejection(downloadFileInThread(options({ repo: 'acme/no-such-repo', revision: 'main', path: FILE })));
    expect(noRepo).toBeInstanceOf(FerryError);
    expect((noRepo as FerryError).code).toBe('source.not_found');
    expect((noRepo as FerryError).message).toContain('repository not found');
    expect((noRepo as FerryError).hint).toMatch(/repo id/); // the hint crosses the thread boundary too

    // Missing file in an existing repo: 404 EntryNotFound.
    const noFile = await rejection(downloadFileInThread(options({ repo: REPO, revision: 'main', path: 'missing.gguf' })));
    expect(noFile).toBeInstanceOf(FerryError);
    expect((noFile as FerryError).code).toBe('source.not_found');
    expect((noFile as FerryError).message).toContain('file not found');

    // Gated repo without a token: 401 GatedRepo, a different code for the same status.
    hub.addRepo({ id: 'acme/gated', gated: true, files: [{ path: FILE, size: 1024, seed: 2 }] });
    const anonymous = new HfClient({ endpoint: hub.url });
    const gated = await rejection(downloadFileInThread({ ...options({ repo: 'acme/gated', revision: 'main', path: FILE }), client: anonymous }));
    expect(gated).toBeInstanceOf(FerryError);
    expect((gated as FerryError).code).toBe('source.gated');

    const resolveGets = hub.log.filter((l) => l.host === 'hub' && l.method === 'GET' && l.path.includes('/resolve/'));
    expect(resolveGets.map((l) => l.status)).toEqual([401, 404, 401]);
    expect(cdnGets()).toHaveLength(0);
  });

  it('rejects with pull.cancelled within 2 s of an abort mid-download', async () => {
    hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 1024 * 1024 }); // ~5 s for the whole file
    const target = await targetOf(client);
    const controller = new AbortController();
    const progress: number[] = [];
    const opts = options(target, { signal: controller.signal, onBytes: (b) => progress.push(b) });

    const pending = rejection(downloadFileInThread(opts));
    await new Promise((r) => setTimeout(r, 500));
    const abortedAt = Date.now();
    controller.abort();
    const err = await Promise.race([pending, new Promise((r) => setTimeout(() => r('still running 2 s after the abort'), 2000))]);
    const took = Date.now() - abortedAt;

    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('pull.cancelled');
    expect(took).toBeLessThan(2000);
    // It was really mid-download: some bytes but not all.
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBeLessThan(SIZE);
  });

  it('rejects at once with pull.cancelled when the signal is already aborted', async () => {
    const target = await targetOf(client);
    const started = Date.now();
    const err = await rejection(downloadFileInThread(options(target, { signal: AbortSignal.abort() })));
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('pull.cancelled');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(cdnGets()).toHaveLength(0);
  });

  it('keeps the errno code of a file-system error (not a FerryError)', async () => {
    const target = await targetOf(client);
    const err = await rejection(downloadFileInThread(options(target, { partPath: join(dir, 'no-such-dir', 'x.part') })));
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(FerryError);
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('never puts the token in relayed events or error messages', async () => {
    const GATED = 'acme/gated-secret';
    hub.addRepo({ id: GATED, gated: true, files: [{ path: FILE, size: 2 * 1024 * 1024, seed: 5 }] });
    const events: string[] = [];
    const errors: unknown[] = [];

    // 1. Succeeds only if the token reached the thread; 500s and a cut on the way produce events.
    hub.fault(GATED, FILE, { kind: 'status', status: 500, times: 2 });
    hub.fault(GATED, FILE, { kind: 'cut', afterBytes: 300_000 });
    const target = await targetOf(client, GATED);
    const result = await downloadFileInThread(options(target, { onEvent: (m) => events.push(m) }));
    expect(result.sha256).toBe(await hub.sha256(GATED, FILE));
    const threadGets = hub.log.filter((l) => l.method === 'GET');
    expect(threadGets.filter((l) => l.host === 'hub').every((l) => l.authorization === `Bearer ${hub.token}`)).toBe(true);
    expect(threadGets.filter((l) => l.host === 'cdn').every((l) => l.authorization === undefined)).toBe(true);
    expect(events.filter((m) => m.includes('answered 500')).length, JSON.stringify(events)).toBe(2);

    // 2. Gives up after repeated 503s: the final error quotes the last failure.
    hub.fault(GATED, FILE, { kind: 'status', status: 503, times: 10 });
    const giveUp = await rejection(
      downloadFileInThread(options(target, { partPath: join(dir, 'giveup.part'), maxAttempts: 2, onEvent: (m) => events.push(m) })),
    );
    expect(giveUp).toBeInstanceOf(FerryError);
    expect((giveUp as FerryError).code).toBe('source.unavailable');
    errors.push(giveUp);

    // 3. A wrong token on the gated repo: the hub refuses it.
    const wrongToken = 'hf_wrong_0123456789abcdef';
    const wrongClient = new HfClient({ endpoint: hub.url, token: wrongToken });
    const refused = await rejection(
      downloadFileInThread({ ...options(target, { partPath: join(dir, 'wrong.part'), onEvent: (m) => events.push(m) }), client: wrongClient }),
    );
    expect(refused).toBeInstanceOf(FerryError);
    expect((refused as FerryError).code).toBe('source.gated');
    expect(hub.log.some((l) => l.authorization === `Bearer ${wrongToken}`)).toBe(true); // it was sent, so it was at hand
    errors.push(refused);

    expect(events.length).toBeGreaterThanOrEqual(3);
    const captured = [
      ...events,
      ...errors.map((e) => {
        const fe = e as FerryError;
        return `${fe.message}\n${fe.hint ?? ''}\n${JSON.stringify(fe.details ?? {})}\n${String(fe.stack)}`;
      }),
    ].join('\n');
    expect(captured).toContain(FILE); // the messages say something
    for (const secret of [hub.token, wrongToken]) expect(captured).not.toContain(secret);
    expect(captured).not.toMatch(/signature=|Bearer/);
  });
});
