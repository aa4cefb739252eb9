import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { appendStreamToFile } from '../../src/stores/append-stream-to-file.js';
import { DirectFileAppender } from '../../src/stores/direct-file-appender.js';

const KiB = 1024;
const MiB = 1024 * KiB;
/** DirectFileAppender's block and staging-buffer sizes. */
const BLOCK = 4096;
const BUFFER_BYTES = 8 * MiB;

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-append-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Cuts `data` into consecutive chunks whose sizes cycle through `sizes` (the last one is whatever is left). */
function chunked(data: Buffer, sizes: number[]): Buffer[] {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const size = sizes[i % sizes.length];
    chunks.push(data.subarray(at, at + size));
    at += size;
  }
  return chunks;
}

/** Checks `path` holds exactly `expected` (size first, then sha256: a readable failure either way). */
async function expectFileToHold(path: string, expected: Buffer): Promise<void> {
  const actual = await readFile(path);
  expect(actual.length).toBe(expected.length);
  expect(sha256(actual)).toBe(sha256(expected));
}

/** Mounting a tmpfs needs root and CAP_SYS_ADMIN; find out once, at collection time. */
function tmpfsUnavailableReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root';
  const probe = mkdtempSync(join(tmpdir(), 'ferry-append-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', probe], { stdio: 'pipe' });
    execFileSync('umount', [probe], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs: ${(err as Error).message.split('\n')[0]}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
}
const noTmpfs = tmpfsUnavailableReason();
if (noTmpfs) console.warn(`append-stream-to-file: skipping the disk-full tests (${noTmpfs})`);

/** Runs `fn` with a 1 MiB tmpfs mounted under the test's directory. */
async function withTinyTmpfs(fn: (mnt: string) => Promise<void>): Promise<void> {
  const mnt = join(dir, 'tiny');
  await mkdir(mnt);
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt]);
  try {
    await fn(mnt);
  } finally {
    await execa('umount', ['--lazy', mnt]); // lazy: a descriptor leaked by the code under test must not fail the cleanup
  }
}

/** This process's open descriptors on `path` (Linux: /proc/self/fd). */
async function descriptorsOn(path: string): Promise<string[]> {
  const found: string[] = [];
  for (const fd of await readdir('/proc/self/fd')) {
    if ((await readlink(`/proc/self/fd/${fd}`).catch(() => '')) === path) found.push(fd);
  }
  return found;
}

describe.each([
  { direct: true, mode: 'direct (O_DIRECT)' },
  { direct: false, mode: 'buffered (page cache)' },
])('appendStreamToFile, $mode', ({ direct }) => {
  if (direct) {
    it('really gets O_DIRECT on the temp directory (else the direct cases only test the fallback)', async () => {
      const appender = await DirectFileAppender.open(join(dir, 'probe'));
      expect(appender).toBeInstanceOf(DirectFileAppender);
      await appender?.close();
    });
  }

  it('writes chunks of awkward sizes across several staging buffers byte for byte', async () => {
    const data = randomBytes(20 * MiB + 123);
    const chunks = chunked(data, [1, 4095, 4097, 65536, 3 * MiB]);
    const path = join(dir, 'blob');
    await appendStreamToFile(Readable.from(chunks), path, { direct });
    await expectFileToHold(path, data);
  });

  it.each([
    { existing: 5000, label: '5000 bytes' },
    { existing: BUFFER_BYTES + 17, label: '8 MiB + 17 bytes' },
  ])('continues an existing file of $label (size not a multiple of the block)', async ({ existing }) => {
    const path = join(dir, 'blob');
    const old = randomBytes(existing);
    await writeFile(path, old);
    if (direct) {
      // The continuation must go through O_DIRECT (reading the last block back), not the silent fallback.
      const appender = await DirectFileAppender.open(path);
      expect(appender).toBeInstanceOf(DirectFileAppender);
      await appender?.close();
      expect((await stat(path)).size).toBe(existing); // opening alone changes nothing
    }
    const added = randomBytes(9 * MiB + 333);
    await appendStreamToFile(Readable.from(chunked(added, [4095, 1, 65536, 1 * MiB + 7])), path, { direct });
    await expectFileToHold(path, Buffer.concat([old, added]));
  });

  it('appends to an empty existing file and leaves an empty source as an empty file', async () => {
    const path = join(dir, 'blob');
    await writeFile(path, '');
    await appendStreamToFile(Readable.from([] as Buffer[]), path, { direct });
    expect((await stat(path)).size).toBe(0);
    const data = randomBytes(3 * BLOCK); // aligned: no tail write at all
    await appendStreamToFile(Readable.from(chunked(data, [BLOCK])), path, { direct });
    await expectFileToHold(path, data);
  });

  it('hands onChunk every chunk, in order', async () => {
    const data = randomBytes(9 * MiB + 4321);
    const chunks = chunked(data, [4097, 1, 3 * MiB, 65536]);
    const seen: Buffer[] = [];
    const path = join(dir, 'blob');
    await appendStreamToFile(Readable.from(chunks), path, { direct, onChunk: (chunk) => seen.push(Buffer.from(chunk)) });
    expect(seen.map((c) => c.length)).toEqual(chunks.map((c) => c.length));
    expect(sha256(Buffer.concat(seen))).toBe(sha256(data));
    await expectFileToHold(path, data);
  });

  it("writes everything received before the source fails, then rethrows the source's error", async () => {
    const received = randomBytes(BUFFER_BYTES + 3 * MiB + 1234); // > one staging buffer, not block-aligned
    expect(received.length % BLOCK).not.toBe(0);
    const failure = new Error('connection reset');
    async function* source(): AsyncGenerator<Buffer> {
      yield* chunked(received, [65536, 4095, 1 * MiB + 1]);
      throw failure;
    }
    const path = join(dir, 'blob');
    const err = await appendStreamToFile(source(), path, { direct }).catch((e: unknown) => e);
    expect(err).toBe(failure);
    await expectFileToHold(path, received);
  });

  it('a source that fails before its first byte leaves an empty file and its error', async () => {
    const failure = new Error('403');
    async function* source(): AsyncGenerator<Buffer> {
      throw failure;
    }
    const path = join(dir, 'blob');
    await expect(appendStreamToFile(source(), path, { direct })).rejects.toBe(failure);
    expect((await stat(path)).size).toBe(0);
  });

  it('a source that stalls after 10 000 bytes has their whole blocks on disk while it waits', async () => {
    const first = randomBytes(10_000);
    const second = randomBytes(5_000);
    const path = join(dir, 'blob');
    let sizeDuringStall = -1;
    async function* source(): AsyncGenerator<Buffer> {
      yield first;
      // Resumed: appendStreamToFile took the first chunk and asks for the next, which is slow in coming.
      await sleep(700);
      sizeDuringStall = (await stat(path)).size;
      yield second;
    }
    await appendStreamToFile(source(), path, { direct });
    if (direct) {
      // 8192 = the two whole blocks of 10 000 bytes; the 1808 left over may wait for the next chunk.
      expect(sizeDuringStall).toBeGreaterThanOrEqual(2 * BLOCK);
      expect(sizeDuringStall).toBeLessThanOrEqual(first.length);
    } else {
      expect(sizeDuringStall).toBe(first.length);
    }
    await expectFileToHold(path, Buffer.concat([first, second]));
  });

  it('a trickling source (3000 bytes every 100 ms) has no whole block waiting in memory for long', async () => {
    const chunks = Array.from({ length: 12 }, () => randomBytes(3000));
    const path = join(dir, 'blob');
    const yieldedAt: number[] = [];
    let onDisk = -1;
    let checkedAt = 0;
    async function* source(): AsyncGenerator<Buffer> {
      for (const [i, chunk] of chunks.entries()) {
        if (i === chunks.length - 1) {
          checkedAt = Date.now();
          onDisk = (await stat(path)).size;
        }
        yieldedAt.push(Date.now());
        yield chunk;
        await sleep(100);
      }
    }
    await appendStreamToFile(source(), path, { direct });
    const yieldedBeforeCheck = 3000 * (chunks.length - 1);
    if (direct) {
      // Whatever arrived 750 ms before the check (500 ms of grace, one chunk interval, slack) is on disk in whole blocks.
      const old = 3000 * yieldedAt.filter((t) => t <= checkedAt - 750).length;
      expect(old).toBeGreaterThanOrEqual(2 * BLOCK); // the check itself means something: at least two blocks are due
      expect(onDisk).toBeGreaterThanOrEqual(old - (old % BLOCK));
      expect(onDisk).toBeLessThanOrEqual(yieldedBeforeCheck);
    } else {
      expect(onDisk).toBe(yieldedBeforeCheck);
    }
    await expectFileToHold(path, Buffer.concat(chunks));
  });

  it.skipIf(noTmpfs).each([
    { size: 3 * MiB + 123, label: '3 MiB + 123 (one staging buffer)' },
    { size: 2 * BUFFER_BYTES + 4 * MiB + 7, label: '20 MiB + 7 (several staging buffers in flight)' },
  ])('on a full disk (1 MiB tmpfs), $label: rejects with ENOSPC, keeps a clean prefix, releases the file', async ({ size }) => {
    await withTinyTmpfs(async (mnt) => {
      const path = join(mnt, 'blob');
      if (direct) {
        // tmpfs takes O_DIRECT since Linux 6.6; on an older kernel this case only tests the fallback.
        const probe = await DirectFileAppender.open(path);
        if (!probe) console.warn('append-stream-to-file: tmpfs refuses O_DIRECT on this kernel; the direct disk-full case runs buffered');
        await probe?.close();
      }
      const data = randomBytes(size);
      const err = await appendStreamToFile(Readable.from(chunked(data, [65536, 4095])), path, { direct }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(Error);
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      // soft: report every broken promise, not only the first
      expect.soft(await descriptorsOn(path)).toEqual([]); // nothing left open (it would also keep the tmpfs busy)
      const written = await readFile(path);
      expect.soft(written.length).toBeLessThanOrEqual(1 * MiB);
      expect.soft(written.length).toBeGreaterThan(0); // the bytes that fit are kept, not thrown away
      expect.soft(written.equals(data.subarray(0, written.length))).toBe(true); // no hole, no garbage
    });
  });

  it.skipIf(noTmpfs)("a write error wins over the source's error", async () => {
    await withTinyTmpfs(async (mnt) => {
      const path = join(mnt, 'blob');
      const data = randomBytes(3 * MiB + 5);
      const failure = new Error('connection reset');
      async function* source(): AsyncGenerator<Buffer> {
        yield* chunked(data, [1 * MiB]);
        throw failure;
      }
      const err = await appendStreamToFile(source(), path, { direct }).catch((e: unknown) => e);
      expect(err).not.toBe(failure);
      expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
      const written = await readFile(path);
      expect(written.equals(data.subarray(0, written.length))).toBe(true);
    });
  });
});

describe('DirectFileAppender.open', () => {
  it('rejects with ENOENT (does not answer undefined) when the directory does not exist', async () => {
    await expect(DirectFileAppender.open(join(dir, 'no-such-dir', 'blob'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
