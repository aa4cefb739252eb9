import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { childEnv } from '../support/temp-home.js';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { download, startMirrorHarness, type MirrorHarness } from './mirror-harness.js';

const REPO = 'acme/cold-GGUF';
const BIG = 'Cold-Q8_0.gguf';
const BIG_SIZE = 64 * 1024 * 1024;

describe('pull-through: a file Ferry lacks is pulled once through the queue and streamed as it lands', () => {
  let h: MirrorHarness;
  beforeEach(async () => {
    h = await startMirrorHarness();
    h.hub.addRepo({ id: REPO, files: [{ path: BIG, size: BIG_SIZE, seed: 9 }, { path: 'README.md', content: Buffer.from('# cold\n') }] });
  });
  afterEach(async () => h?.cleanup());

  it('five clients at once on a cold 64 MiB file: one upstream body fetch, five right copies, no registry row', async () => {
    const expected = await h.hub.sha256(REPO, BIG);
    // Slow enough that all five are following the partial before it is complete.
    h.hub.fault(REPO, BIG, { kind: 'slow', bytesPerSecond: 48 * 1024 * 1024 });
    const url = `${h.hubUrl}/${REPO}/resolve/main/${BIG}`;
    const results = await Promise.all(Array.from({ length: 5 }, () => download(url)));
    for (const r of results) {
      expect(r, JSON.stringify({ ...r, headers: undefined })).toMatchObject({ status: 200, complete: true, bytes: BIG_SIZE, sha256: expected });
      expect(r.headers.etag).toBe(`"${expected}"`);
    }
    const bodyFetches = h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET');
    expect(bodyFetches).toHaveLength(1);
    // Now held: served from the blob with nothing asked upstream.
    const before = h.hub.log.length;
    const again = await download(url, { range: 'bytes=100-' });
    expect(again).toMatchObject({ status: 206, complete: true, bytes: BIG_SIZE - 100 });
    expect(h.hub.log.slice(before)).toEqual([]);
    const rows = (await h.app.inject({ method: 'GET', url: '/api/models' })).json().models;
    expect(rows).toEqual([]);
  });

  it('a small git file is pulled through too, with the git sha1 as ETag; GET /api/mirror and `ferry mirror list` show it', async () => {
    const res = await fetch(`${h.hubUrl}/${REPO}/resolve/main/README.md`);
    expect(res.status).toBe(200);
    const etag = res.headers.get('etag')!.replace(/"/g, '');
    expect(etag).toMatch(/^[0-9a-f]{40}$/);
    expect(Buffer.from(await res.arrayBuffer()).toString()).toBe('# cold\n');
    const listed = await (await fetch(`${h.base}/api/mirror`)).json();
    expect(listed.total_bytes).toBe(7);
    expect(listed.entries).toEqual([expect.objectContaining({ etag, size_bytes: 7, repo: REPO, path: 'README.md', last_used_at: expect.stringMatching(/^\d{4}-/) })]);
    const main = fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url));
    const cli = await execa(process.execPath, [main, 'mirror', 'list', '--json'], { env: childEnv(h.env), extendEnv: false, reject: false });
    expect(cli.exitCode, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toEqual(listed);
    const table = await execa(process.execPath, [main, 'mirror', 'list'], { env: childEnv(h.env), extendEnv: false, reject: false });
    expect(table.stdout).toMatch(/README\.md\s+7 B/);
  });

  it('corrupted upstream bytes: every streaming client is cut off, never completed, and nothing is cached', async () => {
    h.hub.fault(REPO, BIG, { kind: 'slow', bytesPerSecond: 64 * 1024 * 1024 });
    h.hub.fault(REPO, BIG, { kind: 'corrupt' });
    const url = `${h.hubUrl}/${REPO}/resolve/main/${BIG}`;
    const results = await Promise.all(Array.from({ length: 3 }, () => download(url)));
    for (const r of results) {
      expect(r.status).toBe(200);
      expect(r.complete, JSON.stringify({ ...r, headers: undefined })).toBe(false);
      expect(r.bytes).toBeLessThan(BIG_SIZE);
    }
    const blobs = await readdir(join(h.ctx.config.modelRoot, '.ferry-mirror', 'blobs')).catch(() => []);
    expect(blobs).toEqual([]);
    const partials = (await readdir(join(h.ctx.config.pullRoot, '.tmp')).catch(() => [])).filter((n) => n.endsWith('.part'));
    expect(partials).toEqual([]);
  });
});
