import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FerryError } from '../../src/errors/ferry-error.js';
import { TransferLimits } from '../../src/sources/http/transfer-limits.js';
import type { DownloadTarget } from '../../src/sources/huggingface/download-file.js';
import { downloadFileParallel, SLAB_BYTES, type ParallelDownloadOptions } from '../../src/sources/huggingface/download-parallel.js';
import { HfClient } from '../../src/sources/huggingface/hf-client.js';
import { readPartialRecord } from '../../src/sources/huggingface/partial-record.js';
import { startFakeHub, type FakeHub, type RequestLog } from '../support/fake-hub.js';

const REPO = 'acme/parallel-GGUF';
const FILE = 'Parallel-Q8_0.gguf';
/** 12 slabs and a tail: parts end on slab boundaries, the file does not. */
const SIZE = 12 * SLAB_BYTES + 12_345;
const MiB = 1024 * 1024;

async function sha256Of(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => undefined,
    (e: unknown) => e,
  );
}

/** `[start, end]` of every body GET the CDN answered for the file, from its log. */
function cdnRanges(log: RequestLog[]): Array<[number, number]> {
  return log
    .filter((r) => r.host === 'cdn' && r.method === 'GET')
    .map((r) => {
      const m = /^bytes=(\d+)-(\d+)$/.exec(r.range ?? '');
      if (!m) throw new Error(`a GET without a closed Range: ${r.range}`);
      return [Number(m[1]), Number(m[2])] as [number, number];
    });
}

/** Bytes covered by inclusive `[start, end]` ranges. */
function unionSize(ranges: Array<[number, number]>): number {
  let total = 0;
  let reach = -1;
  for (const [s, e] of [...ranges].sort((a, b) => a[0] - b[0])) {
    if (e <= reach) continue;
    total += e - Math.max(s, reach + 1) + 1;
    reach = e;
  }
  return total;
}

describe('downloadFileParallel', () => {
  let hub: FakeHub;
  let dir: string;
  let client: HfClient;
  let events: string[];

  beforeEach(async () => {
    hub = await startFakeHub();
    hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 5, requireRange: true }] });
    // On the real disk, not tmpfs: O_DIRECT is what runs in production.
    dir = await mkdtemp(join(existsSync('/var/tmp') ? '/var/tmp' : tmpdir(), 'ferry-dl-parallel-'));
    client = new HfClient({ endpoint: hub.url, token: hub.token });
    events = [];
  });

  afterEach(async () => {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function targetOf(): Promise<DownloadTarget> {
    const resolved = await client.resolveFile(REPO, 'main', FILE);
    return { repo: REPO, revision: resolved.commit!, path: FILE, size: resolved.size, sha256: resolved.sha256 };
  }

  function options(target: DownloadTarget, extra: Partial<ParallelDownloadOptions['parallel']> = {}, signal = new AbortController().signal): ParallelDownloadOptions {
    return {
      client,
      target,
      partPath: join(dir, `${FILE}.part`),
      signal,
      stallTimeoutMs: 1500,
      retryBaseMs: 20,
      onEvent: (m) => events.push(m),
      parallel: { minBytes: 1, connections: 4, memoryBytes: 8 * SLAB_BYTES, ...extra },
    };
  }

  async function expectInstalled(target: DownloadTarget): Promise<void> {
    const part = join(dir, `${FILE}.part`);
    expect((await stat(part)).size).toBe(SIZE);
    expect(await sha256Of(part)).toBe(target.sha256);
  }

  it('fetches the file in ranged parts over several connections and hashes it in one pass', async () => {
    const target = await targetOf();
    let peak = 0;
    const result = await downloadFileParallel({ ...options(target, { onConnections: (n) => (peak = Math.max(peak, n)) }) });
    expect(result).toEqual({ bytes: SIZE, sha256: target.sha256, verifiedBy: 'sha256' });
    await expectInstalled(target);
    const ranges = cdnRanges(hub.log);
    // Every GET carried a closed Range (the file refuses GETs without one), on slab boundaries, and together they cover the file.
    expect(ranges.every(([s]) => s % SLAB_BYTES === 0)).toBe(true);
    const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
    let covered = 0;
    for (const [s, e] of sorted) {
      expect(s).toBeLessThanOrEqual(covered);
      covered = Math.max(covered, e + 1);
    }
    expect(covered).toBe(SIZE);
    expect(peak).toBe(4);
  });

  it('writes through the page cache with direct_io = false', async () => {
    const target = await targetOf();
    const result = await downloadFileParallel({ ...options(target), directIo: false });
    expect(result.sha256).toBe(target.sha256);
    await expectInstalled(target);
  });

  it('hashes in file order when later parts finish first', async () => {
    const target = await targetOf();
    // The first part waits 800 ms before its first byte: the others finish ahead of it.
    hub.fault(REPO, FILE, { kind: 'stall', afterBytes: 0, ms: 800, atByte: 0 });
    const result = await downloadFileParallel(options(target, { memoryBytes: 32 * MiB }));
    expect(result.sha256).toBe(target.sha256);
    await expectInstalled(target);
    const byStart = hub.log.filter((r) => r.host === 'cdn' && r.method === 'GET');
    expect(byStart.length).toBeGreaterThan(1);
  });

  it('retries only the part whose connection was cut', async () => {
    const target = await targetOf();
    const partStart = 4 * SLAB_BYTES;
    hub.fault(REPO, FILE, { kind: 'cut', afterBytes: 1_000_000, atByte: partStart });
    await downloadFileParallel(options(target));
    await expectInstalled(target);
    const ranges = cdnRanges(hub.log);
    // The cut part was asked again from where its bytes stopped, nothing else twice.
    expect(ranges.some(([s]) => s === partStart + 1_000_000)).toBe(true);
    expect(ranges.reduce((n, [s, e]) => n + e - s + 1, 0)).toBeLessThanOrEqual(SIZE + (SLAB_BYTES * 3));
  });

  it('asks again for a part that stalls, without counting it as a failure', async () => {
    const target = await targetOf();
    hub.fault(REPO, FILE, { kind: 'stall', afterBytes: 100_000, ms: 20_000, atByte: 0 });
    await downloadFileParallel(options(target));
    await expectInstalled(target);
    expect(events.some((e) => e.includes('no bytes for'))).toBe(true);
    expect(cdnRanges(hub.log).some(([s]) => s === 100_000)).toBe(true);
  });

  it('falls back to one stream when the server answers 200 to a Range request', async () => {
    hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 5 }] });
    const target = await targetOf();
    hub.fault(REPO, FILE, { kind: 'ignore-range', times: 100 });
    const result = await downloadFileParallel(options(target));
    expect(result.sha256).toBe(target.sha256);
    await expectInstalled(target);
    expect(events.some((e) => e.includes('one stream'))).toBe(true);
  });

  it('starts over once when a part is answered 416 (the file changed)', async () => {
    const target = await targetOf();
    hub.fault(REPO, FILE, { kind: 'status', status: 416, atByte: 8 * SLAB_BYTES });
    await downloadFileParallel(options(target));
    await expectInstalled(target);
    expect(events.some((e) => e.includes('416') && e.includes('starting over'))).toBe(true);
  });

  it('resolves the file again when the signed CDN URL expires mid-pull and keeps every byte it has', async () => {
    const target = await targetOf();
    let expired = false;
    const opts = options(target, { connections: 2 });
    await downloadFileParallel({
      ...opts,
      onBytes: (bytes) => {
        if (!expired && bytes > 3 * SLAB_BYTES) {
          expired = true;
          hub.expireSignedUrls();
        }
      },
    });
    await expectInstalled(target);
    expect(expired).toBe(true);
    expect(events.some((e) => e.includes('expired'))).toBe(true);
    expect(hub.log.some((r) => r.host === 'cdn' && r.status === 403)).toBe(true);
    // HEADs on the hub: targetOf's, the download's own, and one re-resolve per wave of 403s (at most one per connection).
    const heads = hub.log.filter((r) => r.host === 'hub' && r.method === 'HEAD').length;
    expect(heads).toBeGreaterThanOrEqual(3);
    expect(heads).toBeLessThanOrEqual(4);
    const ranges = cdnRanges(hub.log.filter((r) => r.status === 206));
    expect(ranges.reduce((n, [s, e]) => n + e - s + 1, 0)).toBeLessThanOrEqual(SIZE + 2 * SLAB_BYTES);
  });

  it('fails with pull.checksum_mismatch on corrupted bytes inside one part and leaves nothing', async () => {
    const target = await targetOf();
    hub.fault(REPO, FILE, { kind: 'corrupt', atByte: 4 * SLAB_BYTES });
    const err = await rejection(downloadFileParallel(options(target)));
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).code).toBe('pull.checksum_mismatch');
    expect(existsSync(join(dir, `${FILE}.part`))).toBe(false);
    expect(existsSync(join(dir, `${FILE}.part.json`))).toBe(false);
  });

  it('resumes by part: ranges on disk are re-hashed, never fetched again', async () => {
    const target = await targetOf();
    const controller = new AbortController();
    // Slow, so the first attempt can be stopped with some parts whole and others not.
    hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 8 * MiB });
    const first = downloadFileParallel({
      ...options(target, {}, controller.signal),
      onBytes: (bytes) => bytes > 6 * SLAB_BYTES && controller.abort(),
    });
    expect(((await rejection(first)) as FerryError).code).toBe('pull.cancelled');
    const record = await readPartialRecord(join(dir, `${FILE}.part.json`));
    const written = record!.written!;
    expect(written.length).toBeGreaterThan(0);
    const onDisk = written.reduce((n, [s, e]) => n + e - s, 0);
    expect(onDisk).toBeGreaterThanOrEqual(SLAB_BYTES);
    hub.clearFaults();
    hub.log.length = 0;
    await downloadFileParallel(options(target));
    await expectInstalled(target);
    const fetched = cdnRanges(hub.log);
    for (const [s, e] of fetched) for (const [ws, we] of written) expect(e < ws || s >= we).toBe(true);
    // What was asked for (a split's first half asks past its new end, so ranges may overlap) covers exactly what was missing.
    expect(unionSize(fetched)).toBe(SIZE - onDisk);
  });

  it('a single stream continues a parallel partial from its first contiguous range', async () => {
    const target = await targetOf();
    const partPath = join(dir, `${FILE}.part`);
    const controller = new AbortController();
    hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 8 * MiB });
    const first = downloadFileParallel({ ...options(target, {}, controller.signal), onBytes: (bytes) => bytes > 6 * SLAB_BYTES && controller.abort() });
    await rejection(first);
    const written = (await readPartialRecord(`${partPath}.json`))!.written!;
    const prefix = written[0][0] === 0 ? written[0][1] : 0;
    hub.clearFaults();
    hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 5 }], revision: target.revision });
    hub.log.length = 0;
    const { downloadFile } = await import('../../src/sources/huggingface/download-file.js');
    const result = await downloadFile({ client, target, partPath, signal: new AbortController().signal, retryBaseMs: 20, onEvent: (m) => events.push(m) });
    expect(result.sha256).toBe(target.sha256);
    await expectInstalled(target);
    const gets = hub.log.filter((r) => r.host === 'cdn' && r.method === 'GET');
    expect(gets).toHaveLength(1);
    expect(gets[0].range).toBe(prefix > 0 ? `bytes=${prefix}-` : undefined);
  });

  it('splits a slow part at the frontier that every other part waits for', async () => {
    const target = await targetOf();
    hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 2 * MiB, atByte: 0 });
    let maxAhead = 0;
    const opts = options(target, { connections: 3, memoryBytes: 12 * SLAB_BYTES });
    const res = await downloadFileParallel({ ...opts, onBytes: (have) => (maxAhead = Math.max(maxAhead, have)) });
    expect(res.sha256).toBe(target.sha256);
    await expectInstalled(target);
    // The first part was split, and its second half fetched on another connection, unthrottled.
    expect(events.some((e) => /^range 0?\d+-\d+: a free connection takes its second half|splitting it/.test(e))).toBe(true);
    expect(cdnRanges(hub.log).some(([s]) => s > 0 && s < 4 * SLAB_BYTES)).toBe(true);
  });

  it('keeps to a bandwidth cap within 10% over 10 s', async () => {
    const target = await targetOf();
    const cap = SIZE / 10; // ten seconds' worth
    const limits = new TransferLimits({ maxBandwidthBps: cap });
    const t0 = performance.now();
    await downloadFileParallel(options(target, { limits }));
    const seconds = (performance.now() - t0) / 1000;
    await expectInstalled(target);
    const rate = SIZE / seconds;
    expect(rate).toBeLessThan(cap * 1.1);
    expect(rate).toBeGreaterThan(cap * 0.8);
  }, 30_000);

  it('the fake CDN refuses a GET without Range for this file, which a single stream sends first', async () => {
    const target = await targetOf();
    const { downloadFile } = await import('../../src/sources/huggingface/download-file.js');
    const err = await rejection(downloadFile({ client, target, partPath: join(dir, 'single.part'), signal: new AbortController().signal }));
    expect((err as FerryError).code).toBe('source.bad_response');
    expect(hub.log.some((r) => r.host === 'cdn' && !r.range && r.status === 400)).toBe(true);
  });

  it('keeps to the per-host connection limit across downloads', async () => {
    const target = await targetOf();
    const limits = new TransferLimits({ maxConnectionsPerHost: 3 });
    let peak = 0;
    let open = 0;
    const track = (n: number, prev: { n: number }) => {
      open += n - prev.n;
      prev.n = n;
      peak = Math.max(peak, open);
    };
    const a = { n: 0 };
    const b = { n: 0 };
    const second = join(dir, 'second.part');
    await Promise.all([
      downloadFileParallel(options(target, { limits, connections: 4, onConnections: (n) => track(n, a) })),
      downloadFileParallel({ ...options(target, { limits, connections: 4, onConnections: (n) => track(n, b) }), partPath: second }),
    ]);
    expect(peak).toBe(3);
    expect(await sha256Of(second)).toBe(target.sha256);
    await expectInstalled(target);
  });
});
