import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { contentOf, startFakeHub, type FakeFile, type FakeHub } from '../support/fake-hub.js';

const REPO = 'acme/tiny-model';
const COMMIT = 'a'.repeat(40);
const SMALL = Buffer.from('{"architectures":["LlamaForCausalLM"]}\n');
const WEIGHTS: FakeFile = { path: 'model.safetensors', size: 3 * 1024 * 1024 + 17, seed: 7 };

async function bytesOf(file: FakeFile, start?: number, end?: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of contentOf(file, start, end)) parts.push(part);
  return Buffer.concat(parts);
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A raw GET recording each 'data' event, so tests see exactly which bytes arrived before a fault. */
function rawGet(url: string, headers: Record<string, string> = {}) {
  return new Promise<{ status: number; headers: Record<string, unknown>; body: Buffer; events: Array<{ at: number; total: number }>; error?: Error }>(
    (resolve, reject) => {
      const req = request(url, { headers }, (res) => {
        const parts: Buffer[] = [];
        const events: Array<{ at: number; total: number }> = [];
        let total = 0;
        const finish = (error?: Error) =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), events, error });
        res.on('data', (part: Buffer) => {
          parts.push(part);
          total += part.length;
          events.push({ at: performance.now(), total });
        });
        res.on('end', () => finish());
        res.on('error', finish);
        res.on('aborted', () => finish(new Error('aborted')));
      });
      req.on('error', reject);
      req.end();
    },
  );
}

describe('fake hub', () => {
  let hub: FakeHub;
  beforeEach(async () => {
    hub = await startFakeHub({ pageSize: 3 });
    hub.addRepo({
      id: REPO,
      revision: COMMIT,
      branches: ['main', 'refs/pr/1'],
      files: [
        { path: 'config.json', content: SMALL },
        WEIGHTS,
        { path: 'sub/dir/notes.txt', content: Buffer.from('notes') },
        { path: 'sub/tok.json', content: Buffer.from('{}') },
      ],
    });
  });
  afterEach(() => hub.close());

  it('generates the same bytes for any range of a seeded file', async () => {
    const whole = await bytesOf(WEIGHTS);
    expect(whole.length).toBe(WEIGHTS.size);
    const slice = await bytesOf(WEIGHTS, 1024 * 1024 - 5, 2 * 1024 * 1024 + 9);
    expect(slice.equals(whole.subarray(1024 * 1024 - 5, 2 * 1024 * 1024 + 9))).toBe(true);
    expect((await bytesOf({ ...WEIGHTS, seed: 8 })).equals(whole)).toBe(false);
    expect(await hub.sha256(REPO, WEIGHTS.path)).toBe(sha256(whole));
  });

  it('pages the recursive tree with Link headers and directory entries', async () => {
    const entries: Array<Record<string, any>> = [];
    let next: string | undefined = `${hub.url}/api/models/${REPO}/tree/main?recursive=true`;
    let pages = 0;
    while (next) {
      const res: Response = await fetch(next);
      expect(res.status).toBe(200);
      entries.push(...((await res.json()) as Array<Record<string, any>>));
      next = /<([^>]+)>;\s*rel="next"/.exec(res.headers.get('link') ?? '')?.[1];
      pages++;
    }
    expect(pages).toBe(2);
    expect(entries.map((e) => `${e.type}:${e.path}`)).toEqual([
      'file:config.json',
      'file:model.safetensors',
      'directory:sub',
      'directory:sub/dir',
      'file:sub/dir/notes.txt',
      'file:sub/tok.json',
    ]);
    const config = entries.find((e) => e.path === 'config.json')!;
    expect(config.oid).toBe(createHash('sha1').update(`blob ${SMALL.length}\0`).update(SMALL).digest('hex'));
    expect(config.lfs).toBeUndefined();
    const weights = entries.find((e) => e.path === 'model.safetensors')!;
    expect(weights.lfs).toMatchObject({ oid: sha256(await bytesOf(WEIGHTS)), size: WEIGHTS.size });
    // The real pointer's length: 134 bytes for a 9-digit size, 132 for this 7-digit one.
    expect(weights.lfs.pointerSize).toBe(132);
    const byCommit = await fetch(`${hub.url}/api/models/${REPO}/tree/${COMMIT}?recursive=true`);
    expect(byCommit.status).toBe(200);
  });

  it('lists revision siblings with blob ids and lfs sha256', async () => {
    const res = await fetch(`${hub.url}/api/models/${REPO}/revision/refs%2Fpr%2F1?blobs=true`);
    const info = (await res.json()) as { id: string; sha: string; siblings: Array<Record<string, any>> };
    expect(info).toMatchObject({ id: REPO, sha: COMMIT });
    expect(info.siblings).toHaveLength(4);
    const weights = info.siblings.find((s) => s.rfilename === 'model.safetensors')!;
    expect(weights).toMatchObject({ size: WEIGHTS.size, lfs: { sha256: await hub.sha256(REPO, WEIGHTS.path), size: WEIGHTS.size } });
  });

  it('redirects lfs files to the CDN host and serves git files directly', async () => {
    const res = await fetch(`${hub.url}/${REPO}/resolve/main/model.safetensors`, { redirect: 'manual', headers: { authorization: 'Bearer x' } });
    expect(res.status).toBe(302);
    const digest = await hub.sha256(REPO, WEIGHTS.path);
    expect(res.headers.get('x-repo-commit')).toBe(COMMIT);
    expect(res.headers.get('x-linked-etag')).toBe(`"${digest}"`);
    expect(res.headers.get('etag')).toBe(`"${digest}"`);
    expect(res.headers.get('x-linked-size')).toBe(String(WEIGHTS.size));
    expect(Number(res.headers.get('content-length'))).toBeLessThan(1000);
    const location = res.headers.get('location')!;
    expect(new URL(location).host).toBe(new URL(hub.cdnUrl).host);
    expect(new URL(location).hostname).not.toBe(new URL(hub.url).hostname);

    const blob = await fetch(location);
    expect(blob.status).toBe(200);
    expect(blob.headers.get('accept-ranges')).toBe('bytes');
    expect(sha256(Buffer.from(await blob.arrayBuffer()))).toBe(digest);
    // fetch drops Authorization across hosts; the log is what lets client tests assert that.
    const cdnLog = hub.log.filter((l) => l.host === 'cdn');
    expect(cdnLog).toHaveLength(1);
    expect(cdnLog[0]).toMatchObject({ method: 'GET', status: 200, authorization: undefined });
    expect(hub.log[0]).toMatchObject({ host: 'hub', authorization: 'Bearer x', status: 302 });

    const unsigned = await fetch(`${hub.cdnUrl}/blobs/${digest}`);
    expect(unsigned.status).toBe(403);

    const direct = await fetch(`${hub.url}/${REPO}/resolve/refs%2Fpr%2F1/config.json`);
    expect(direct.status).toBe(200);
    expect(direct.headers.get('etag')).toBe(`"${createHash('sha1').update(`blob ${SMALL.length}\0`).update(SMALL).digest('hex')}"`);
    expect(direct.headers.get('x-linked-etag')).toBeNull();
    expect(Buffer.from(await direct.arrayBuffer())).toEqual(SMALL);

    const head = await fetch(`${hub.url}/${REPO}/resolve/${COMMIT}/sub/dir/notes.txt`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('5');
  });

  it('answers ranges with 206 and unsatisfiable ones with 416, on the CDN and the hub', async () => {
    const whole = await bytesOf(WEIGHTS);
    const location = (await fetch(`${hub.url}/${REPO}/resolve/main/model.safetensors`, { redirect: 'manual' })).headers.get('location')!;
    const open = await fetch(location, { headers: { range: 'bytes=2000000-' } });
    expect(open.status).toBe(206);
    expect(open.headers.get('content-range')).toBe(`bytes 2000000-${whole.length - 1}/${whole.length}`);
    expect(Buffer.from(await open.arrayBuffer()).equals(whole.subarray(2000000))).toBe(true);
    const closed = await fetch(location, { headers: { range: 'bytes=10-19' } });
    expect(closed.status).toBe(206);
    expect(closed.headers.get('content-length')).toBe('10');
    expect(Buffer.from(await closed.arrayBuffer())).toEqual(whole.subarray(10, 20));
    const beyond = await fetch(location, { headers: { range: `bytes=${whole.length}-` } });
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe(`bytes */${whole.length}`);

    const git = await fetch(`${hub.url}/${REPO}/resolve/main/config.json`, { headers: { range: 'bytes=2-' } });
    expect(git.status).toBe(206);
    expect(Buffer.from(await git.arrayBuffer())).toEqual(SMALL.subarray(2));
  });

  it('follows a rename with a relative 307', async () => {
    hub.rename(REPO, 'acme/renamed');
    const res = await fetch(`${hub.url}/${REPO}/resolve/main/config.json?x=1`, { redirect: 'manual' });
    expect(res.status).toBe(307);
    expect(res.headers.get('location')).toBe('/acme/renamed/resolve/main/config.json?x=1');
    const followed = await fetch(`${hub.url}/${REPO}/resolve/main/config.json`);
    expect(Buffer.from(await followed.arrayBuffer())).toEqual(SMALL);
    const info = await fetch(`${hub.url}/api/models/${REPO}`, { redirect: 'manual' });
    expect([info.status, info.headers.get('location')]).toEqual([307, '/api/models/acme/renamed']);
    expect(((await (await fetch(`${hub.url}/api/models/${REPO}`)).json()) as { id: string }).id).toBe('acme/renamed');
  });

  it('answers errors with the Hub headers', async () => {
    hub.addRepo({ id: 'acme/gated', gated: true, files: [{ path: 'a.gguf', size: 100 }] });
    hub.addRepo({ id: 'acme/private', private: true, files: [{ path: 'a.txt', content: Buffer.from('a') }] });
    const expectError = async (path: string, status: number, code: string, init: RequestInit = {}) => {
      const res = await fetch(`${hub.url}${path}`, { redirect: 'manual', ...init });
      expect([path, res.status, res.headers.get('x-error-code')]).toEqual([path, status, code]);
      expect(res.headers.get('x-error-message')).toBeTruthy();
    };
    await expectError('/nobody/nothing/resolve/main/x.bin', 401, 'RepoNotFound');
    await expectError('/api/models/nobody/nothing/tree/main', 401, 'RepoNotFound');
    await expectError('/acme/gated/resolve/main/a.gguf', 401, 'GatedRepo', { method: 'HEAD' });
    await expectError('/acme/gated/resolve/main/a.gguf', 401, 'GatedRepo');
    await expectError('/api/models/acme/gated/tree/main?recursive=true', 401, 'GatedRepo');
    await expectError('/acme/gated/resolve/main/a.gguf', 401, 'GatedRepo', { headers: { authorization: 'Bearer wrong' } });
    await expectError('/acme/private/resolve/main/a.txt', 401, 'RepoNotFound');
    await expectError(`/${REPO}/resolve/main/missing.bin`, 404, 'EntryNotFound');
    await expectError(`/${REPO}/resolve/nope/config.json`, 404, 'RevisionNotFound');
    await expectError(`/api/models/${REPO}/tree/nope`, 404, 'RevisionNotFound');
    const authorized = { authorization: `Bearer ${hub.token}` };
    expect((await fetch(`${hub.url}/acme/gated/resolve/main/a.gguf`, { headers: authorized, redirect: 'manual' })).status).toBe(302);
    expect((await fetch(`${hub.url}/acme/private/resolve/main/a.txt`, { headers: authorized })).status).toBe(200);
  });

  describe('faults', () => {
    const cdnLocation = async () =>
      (await fetch(`${hub.url}/${REPO}/resolve/main/model.safetensors`, { redirect: 'manual' })).headers.get('location')!;

    it('cuts the connection after exactly N bytes, `times` times', async () => {
      hub.fault(REPO, WEIGHTS.path, { kind: 'cut', afterBytes: 1_500_000, times: 2 });
      const location = await cdnLocation();
      for (let i = 0; i < 2; i++) {
        const res = await rawGet(location);
        expect(res.error).toBeDefined();
        expect(res.body.length).toBe(1_500_000);
      }
      const res = await rawGet(location);
      expect(res.error).toBeUndefined();
      expect(res.body.length).toBe(WEIGHTS.size);
    });

    it('cuts direct hub downloads too, even before the first byte', async () => {
      hub.fault(REPO, 'config.json', { kind: 'cut', afterBytes: 0 });
      const res = await rawGet(`${hub.url}/${REPO}/resolve/main/config.json`);
      expect(res.status).toBe(200);
      expect(res.error).toBeDefined();
      expect(res.body.length).toBe(0);
    });

    it('stalls after N bytes, then sends the rest', async () => {
      hub.fault(REPO, WEIGHTS.path, { kind: 'stall', afterBytes: 100_000, ms: 600 });
      const res = await rawGet(await cdnLocation());
      expect(res.error).toBeUndefined();
      expect(sha256(res.body)).toBe(await hub.sha256(REPO, WEIGHTS.path));
      const gaps = res.events.slice(1).map((e, i) => ({ gap: e.at - res.events[i].at, before: res.events[i].total }));
      const longest = gaps.reduce((a, b) => (b.gap > a.gap ? b : a));
      expect(longest.before).toBe(100_000);
      expect(longest.gap).toBeGreaterThanOrEqual(500);
    });

    it('corrupts one byte, keeping the length', async () => {
      hub.fault(REPO, WEIGHTS.path, { kind: 'corrupt' });
      const whole = await bytesOf(WEIGHTS);
      const location = await cdnLocation();
      const bad = Buffer.from(await (await fetch(location)).arrayBuffer());
      expect(bad.length).toBe(whole.length);
      const middle = Math.floor(whole.length / 2);
      expect(bad[middle]).toBe(whole[middle] ^ 0xff);
      bad[middle] ^= 0xff;
      expect(bad.equals(whole)).toBe(true);
      expect(Buffer.from(await (await fetch(location)).arrayBuffer()).equals(whole)).toBe(true);
    });

    it('ignores a Range header once, answering 200 with the whole body', async () => {
      hub.fault(REPO, WEIGHTS.path, { kind: 'ignore-range' });
      const location = await cdnLocation();
      const plain = await fetch(location);
      await plain.arrayBuffer();
      const ignored = await fetch(location, { headers: { range: 'bytes=100-' } });
      expect(ignored.status).toBe(200);
      expect((await ignored.arrayBuffer()).byteLength).toBe(WEIGHTS.size);
      const honoured = await fetch(location, { headers: { range: 'bytes=100-' } });
      expect(honoured.status).toBe(206);
      await honoured.arrayBuffer();
    });

    it('answers injected statuses in order, with Retry-After', async () => {
      hub.fault(REPO, 'config.json', { kind: 'status', status: 429, retryAfter: 3 });
      hub.fault(REPO, 'config.json', { kind: 'status', status: 503, times: 2 });
      hub.fault(REPO, 'config.json', { kind: 'status', status: 416 });
      const url = `${hub.url}/${REPO}/resolve/main/config.json`;
      expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
      const limited = await fetch(url);
      expect([limited.status, limited.headers.get('retry-after')]).toEqual([429, '3']);
      expect((await fetch(url)).status).toBe(503);
      expect((await fetch(url)).status).toBe(503);
      const stale = await fetch(url);
      expect([stale.status, stale.headers.get('content-range')]).toEqual([416, `bytes */${SMALL.length}`]);
      expect((await fetch(url)).status).toBe(200);

      // On an lfs file the first GET takes the fault, be it the resolve GET or the CDN GET.
      hub.fault(REPO, WEIGHTS.path, { kind: 'status', status: 500 });
      const resolve = `${hub.url}/${REPO}/resolve/main/model.safetensors`;
      expect((await fetch(resolve, { redirect: 'manual' })).status).toBe(500);
      const location = await cdnLocation();
      hub.fault(REPO, WEIGHTS.path, { kind: 'status', status: 502 });
      expect((await fetch(location)).status).toBe(502);
      expect((await fetch(location)).status).toBe(200);
    });

    it('throttles a slow file until the faults are cleared', async () => {
      hub.fault(REPO, WEIGHTS.path, { kind: 'slow', bytesPerSecond: 200_000 });
      const location = await cdnLocation();
      const aborter = new AbortController();
      const res = await fetch(location, { signal: aborter.signal });
      const reader = res.body!.getReader();
      let received = 0;
      const started = performance.now();
      while (performance.now() - started < 300) received += (await reader.read()).value?.length ?? 0;
      aborter.abort();
      expect(received).toBeGreaterThan(0);
      expect(received).toBeLessThan(WEIGHTS.size!);
      hub.clearFaults();
      expect((await (await fetch(location)).arrayBuffer()).byteLength).toBe(WEIGHTS.size);
    });

    it('closes without waiting for a stalled response', async () => {
      hub.fault(REPO, WEIGHTS.path, { kind: 'stall', afterBytes: 10, ms: 10 * 60_000 });
      const res = await fetch(await cdnLocation());
      const reader = res.body!.getReader();
      let received = 0;
      while (received < 10) received += (await reader.read()).value!.length;
      // Would hit the test timeout if close() waited for the ten-minute stall.
      await hub.close();
      await expect(reader.read()).rejects.toThrow();
    });

    it('streams a large generated file with backpressure', async () => {
      const big: FakeFile = { path: 'big.gguf', size: 64 * 1024 * 1024 + 3, seed: 1 };
      hub.addRepo({ id: 'acme/big', files: [big] });
      const location = (await fetch(`${hub.url}/acme/big/resolve/main/big.gguf`, { redirect: 'manual' })).headers.get('location')!;
      const res = await fetch(location);
      const hash = createHash('sha256');
      let size = 0;
      for await (const part of res.body as unknown as AsyncIterable<Uint8Array>) {
        hash.update(part);
        size += part.length;
      }
      expect(size).toBe(big.size);
      expect(hash.digest('hex')).toBe(await hub.sha256('acme/big', 'big.gguf'));
    });
  });
});
