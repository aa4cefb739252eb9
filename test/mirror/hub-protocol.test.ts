import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sanitizeEntry } from '../../src/mirror/upstream-hub.js';
import { fileSnapshot, sha256, startMirrorHarness, type MirrorHarness } from './mirror-harness.js';

const REPO = 'acme/tiny-GGUF';
const COMMIT = 'a'.repeat(40);
const GGUF = 'Tiny-Q4_K_M.gguf';
const GGUF_SIZE = 3 * 1024 * 1024 + 17;
const CONFIG = Buffer.from('{"model_type":"tiny"}\n');
const MANY = 'acme/many-files';

/** A request with the path sent exactly as given (fetch would normalise `..` away). */
function rawRequest(base: string, method: string, path: string, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: url.hostname, port: url.port, method, path, headers: body ? { 'content-type': 'application/json' } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the Hub protocol under /hub, served from what Ferry holds', () => {
  let h: MirrorHarness;
  let ggufSha: string;
  beforeAll(async () => {
    h = await startMirrorHarness();
    h.hub.addRepo({
      id: REPO,
      revision: COMMIT,
      files: [
        { path: GGUF, size: GGUF_SIZE, seed: 3 },
        { path: 'config.json', content: CONFIG },
        { path: 'docs/deep/readme.md', content: Buffer.from('# tiny\n') },
      ],
    });
    h.hub.addRepo({ id: MANY, files: Array.from({ length: 1205 }, (_, i) => ({ path: `f/${String(i).padStart(5, '0')}.txt`, content: Buffer.from(String(i)) })) });
    ggufSha = (await h.pull('tiny', REPO, GGUF)).sha256;
    await h.pull('tiny-config', REPO, 'config.json');
  });
  afterAll(async () => h?.cleanup());

  it('answers model info and revision info with id, sha and siblings with sizes and lfs', async () => {
    for (const path of [`/api/models/${REPO}`, `/api/models/${REPO}/revision/main`, `/api/models/${REPO}/revision/${COMMIT}`]) {
      const res = await fetch(`${h.hubUrl}${path}`);
      expect(res.status, path).toBe(200);
      const info = await res.json();
      expect(info).toMatchObject({ id: REPO, sha: COMMIT });
      expect(info.siblings).toContainEqual(expect.objectContaining({ rfilename: GGUF, size: GGUF_SIZE, lfs: expect.objectContaining({ sha256: ggufSha, size: GGUF_SIZE }) }));
      expect(info.siblings).toContainEqual(expect.objectContaining({ rfilename: 'config.json', size: CONFIG.length }));
      expect(info.siblings.find((s: { rfilename: string }) => s.rfilename === 'config.json').lfs).toBeUndefined();
    }
  });

  it('lists the tree exactly as the Hub does, recursive or not, for a sub-path too', async () => {
    for (const query of ['?recursive=true', '?recursive=True', '', '/docs?recursive=false', '/docs?recursive=true']) {
      const [path, qs] = query.split('?');
      const ours = await (await fetch(`${h.hubUrl}/api/models/${REPO}/tree/main${path}${qs !== undefined ? `?${qs}` : ''}`)).json();
      const theirs = await (await fetch(`${h.hub.url}/api/models/${REPO}/tree/main${path}${qs !== undefined ? `?${qs.toLowerCase()}` : ''}`)).json();
      expect(ours, query).toEqual(theirs);
    }
  });

  it('pages a long tree with Link next URLs pointing at Ferry, pinned to the commit', async () => {
    const first = await fetch(`${h.hubUrl}/api/models/${MANY}/tree/main?recursive=true`);
    const link = first.headers.get('link')!;
    expect(link).toMatch(new RegExp(`^<${h.hubUrl}/api/models/${MANY}/tree/[0-9a-f]{40}\\?.*cursor=.*>; rel="next"$`));
    const all = [...(await first.json())];
    let next: string | undefined = /<([^>]+)>/.exec(link)![1];
    for (let i = 0; next && i < 10; i++) {
      const page: Response = await fetch(next);
      all.push(...(await page.json()));
      next = /<([^>]+)>/.exec(page.headers.get('link') ?? '')?.[1];
    }
    expect(all.filter((e) => e.type === 'file')).toHaveLength(1205);
    expect(new Set(all.map((e) => e.path)).size).toBe(all.length);
  });

  it('answers paths-info for JSON and form bodies', async () => {
    const json = await fetch(`${h.hubUrl}/api/models/${REPO}/paths-info/main`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ paths: [GGUF, 'nope.bin'], expand: true }) });
    expect(json.status).toBe(200);
    const [entry, ...more] = await json.json();
    expect(more).toEqual([]);
    expect(entry).toMatchObject({ type: 'file', path: GGUF, lfs: { oid: ggufSha, size: GGUF_SIZE }, lastCommit: { id: COMMIT } });
    const form = await fetch(`${h.hubUrl}/api/models/${REPO}/paths-info/${COMMIT}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `paths=config.json&paths=docs` });
    expect((await form.json()).map((e: { path: string }) => e.path).sort()).toEqual(['config.json', 'docs']);
  });

  it('HEAD on resolve gives the Hub\'s commit, etags and size; GET sends the held bytes without touching upstream', async () => {
    const theirs = await fetch(`${h.hub.url}/${REPO}/resolve/main/${GGUF}`, { method: 'HEAD', redirect: 'manual' });
    const head = await fetch(`${h.hubUrl}/${REPO}/resolve/main/${GGUF}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    for (const name of ['x-repo-commit', 'etag', 'x-linked-etag', 'x-linked-size']) expect(head.headers.get(name), name).toBe(theirs.headers.get(name));
    expect(head.headers.get('accept-ranges')).toBe('bytes');
    expect(head.headers.get('content-length')).toBe(String(GGUF_SIZE));
    const before = h.hub.log.length;
    const body = Buffer.from(await (await fetch(`${h.hubUrl}/${REPO}/resolve/main/${GGUF}`)).arrayBuffer());
    expect(sha256(body)).toBe(ggufSha);
    expect(h.hub.log.slice(before).filter((l) => l.host === 'cdn')).toEqual([]);
  });

  it('serves a small git file with the git sha1 as ETag and no X-Linked-Etag, as the Hub does', async () => {
    const theirs = await fetch(`${h.hub.url}/${REPO}/resolve/main/config.json`, { method: 'HEAD' });
    const res = await fetch(`${h.hubUrl}/${REPO}/resolve/${COMMIT}/config.json`);
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe(theirs.headers.get('etag'));
    expect(res.headers.get('etag')).toMatch(/^"[0-9a-f]{40}"$/);
    expect(res.headers.get('x-linked-etag')).toBeNull();
    expect(Buffer.from(await res.arrayBuffer())).toEqual(CONFIG);
  });

  it('single ranges answer 206 with Content-Range; an unsatisfiable one 416; a matching If-None-Match 304', async () => {
    const whole = Buffer.from(await (await fetch(`${h.hubUrl}/${REPO}/resolve/main/${GGUF}`)).arrayBuffer());
    for (const [range, start, end] of [['bytes=10-19', 10, 20], ['bytes=-5', GGUF_SIZE - 5, GGUF_SIZE], [`bytes=${GGUF_SIZE - 3}-`, GGUF_SIZE - 3, GGUF_SIZE], ['bytes=0-99999999', 0, GGUF_SIZE]] as const) {
      const res = await fetch(`${h.hubUrl}/${REPO}/resolve/main/${GGUF}`, { headers: { range } });
      expect(res.status, range).toBe(206);
      expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end - 1}/${GGUF_SIZE}`);
      expect(Buffer.from(await res.arrayBuffer()).equals(whole.subarray(start, end)), range).toBe(true);
    }
    const bad = await fetch(`${h.hubUrl}/${REPO}/resolve/main/${GGUF}`, { headers: { range: `bytes=${GGUF_SIZE}-` } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe(`bytes */${GGUF_SIZE}`);
    const cached = await fetch(`${h.hubUrl}/${REPO}/resolve/main/${GGUF}`, { headers: { 'if-none-match': `"${ggufSha}"` } });
    expect(cached.status).toBe(304);
    expect(cached.headers.get('etag')).toBe(`"${ggufSha}"`);
    const other = await fetch(`${h.hubUrl}/${REPO}/resolve/main/${GGUF}`, { method: 'HEAD', headers: { 'if-none-match': `"${'0'.repeat(64)}"` } });
    expect(other.status).toBe(200);
  });

  it('answers the Hub\'s X-Error-Code errors; datasets are out of scope', async () => {
    const cases: Array<[string, number, string]> = [
      [`/${REPO}/resolve/main/missing.bin`, 404, 'EntryNotFound'],
      [`/${REPO}/resolve/no-such-branch/${GGUF}`, 404, 'RevisionNotFound'],
      [`/acme/no-such-repo/resolve/main/x.bin`, 404, 'RepoNotFound'],
      [`/api/models/acme/no-such-repo`, 404, 'RepoNotFound'],
      [`/api/datasets/acme/data`, 404, 'RepoNotFound'],
      [`/datasets/acme/data/resolve/main/x.csv`, 404, 'RepoNotFound'],
    ];
    for (const [path, status, code] of cases) {
      const res = await fetch(`${h.hubUrl}${path}`);
      expect(res.status, path).toBe(status);
      expect(res.headers.get('x-error-code'), path).toBe(code);
    }
    const entry = await fetch(`${h.hubUrl}/${REPO}/resolve/main/missing.bin`, { method: 'HEAD' });
    expect(entry.headers.get('x-repo-commit')).toBe(COMMIT);
    const dataset = await (await fetch(`${h.hubUrl}/datasets/acme/data/resolve/main/x.csv`)).json();
    expect(dataset.error.message).toMatch(/out of scope/);
  });

  it('hostile repo names and paths on every /hub route: 4xx, nothing written, nothing asked upstream', async () => {
    const before = await fileSnapshot(h.home);
    const upstreamBefore = h.hub.log.length;
    const hostile = [
      ['GET', `/hub/${REPO}/resolve/main/../../../registry/registry.toml`],
      ['GET', `/hub/${REPO}/resolve/main/..%2F..%2Fregistry%2Fregistry.toml`],
      ['GET', `/hub/${REPO}/resolve/main/a%00b`],
      ['GET', `/hub/${REPO}/resolve/main/%E0%A4%A`],
      ['GET', `/hub/${REPO}/resolve/main/dir%5C..%5Cx`],
      ['GET', `/hub/${REPO}/resolve/..%2F..%2Fx/${GGUF}`],
      ['HEAD', `/hub/..%2F..%2Fetc/passwd/resolve/main/x`],
      ['GET', `/hub/acme/.hidden/resolve/main/x`],
      ['GET', `/hub/acme/${'n'.repeat(300)}/resolve/main/x`],
      ['GET', `/hub/api/models/acme/..%2F..%2Fx`],
      ['GET', `/hub/api/models/acme/tiny/revision/..%2F..`],
      ['GET', `/hub/api/models/${REPO}/tree/main/..%2F..%2F..`],
      ['GET', `/hub/api/models/${REPO}/tree/main?cursor=LTE`],
      ['GET', `/hub/api/models/${REPO}/tree/main/%2Fetc`],
      ['POST', `/hub/api/models/${REPO}/preupload/main`],
      ['GET', `/hub/${REPO}/blob/main/${GGUF}`],
    ];
    for (const [method, path] of hostile) {
      const res = await rawRequest(h.base, method, path);
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(400);
      expect(res.status, `${method} ${path}`).toBeLessThan(500);
    }
    for (const paths of [['../x'], ['/etc/passwd'], ['a\u0000b'], { a: 1 }, [1, 2]]) {
      const res = await rawRequest(h.base, 'POST', `/hub/api/models/${REPO}/paths-info/main`, JSON.stringify({ paths }));
      expect(res.status, JSON.stringify(paths)).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
    }
    expect(await fileSnapshot(h.home)).toEqual(before);
    expect(h.hub.log.slice(upstreamBefore)).toEqual([]);
  });

  it('never passes Xet hints on: tree entries keep only the Hub fields Ferry vouches for', () => {
    const entry = sanitizeEntry({ type: 'file', path: 'a.gguf', oid: 'b'.repeat(40), size: 5, xetHash: 'c'.repeat(64), lfs: { oid: 'd'.repeat(64), size: 5, pointerSize: 130 }, securityFileStatus: {} });
    expect(entry).toEqual({ type: 'file', path: 'a.gguf', oid: 'b'.repeat(40), size: 5, lfs: { oid: 'd'.repeat(64), size: 5, pointerSize: 130 } });
    expect(sanitizeEntry({ type: 'file', path: '../x', oid: 'b'.repeat(40), size: 1 })).toBeUndefined();
  });
});
