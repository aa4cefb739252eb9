import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readFile, readlink, rm, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import type { AddressInfo } from 'node:net';
import { downloadFileToCacheDir, snapshotDownload } from '@huggingface/hub';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { FerryContext } from '../../src/app/create-context.js';
import { loadConfig } from '../../src/config/load-config.js';
import { sha256, startMirrorHarness, type MirrorHarness } from './mirror-harness.js';

const run = promisify(execFile);
const REPO = 'acme/clients-GGUF';
const GGUF = 'Clients-Q4_K_M.gguf';
const GGUF_SIZE = 5 * 1024 * 1024 + 3;

/** Every path under a Hub cache dir: symlinks by target, files by sha256 (paths, blob names and bytes). */
async function describeCache(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(root, path);
      const info = await lstat(path);
      if (info.isSymbolicLink()) out[rel] = `-> ${await readlink(path)}`;
      else if (info.isDirectory()) {
        out[rel] = 'dir';
        await walk(path);
      } else out[rel] = `${info.size} ${sha256(await readFile(path))}`;
    }
  };
  await walk(root);
  return out;
}

async function which(bin: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${bin}`]).then(() => true, () => false);
}

describe('real Hub clients against Ferry fronting the fake Hub', () => {
  let h: MirrorHarness;
  let scratch: string;
  let ggufSha: string;
  const haveCurl = { value: false };
  const haveAria = { value: false };
  beforeAll(async () => {
    h = await startMirrorHarness();
    scratch = await mkdtemp(join(tmpdir(), 'ferry-mirror-clients-'));
    h.hub.addRepo({
      id: REPO,
      files: [
        { path: GGUF, size: GGUF_SIZE, seed: 5 },
        { path: 'config.json', content: Buffer.from('{"a":1}\n') },
        { path: 'tokenizer/vocab.txt', content: Buffer.from('a\nb\nc\n') },
        { path: 'README.md', content: Buffer.from('# clients\n') },
      ],
    });
    ggufSha = await h.hub.sha256(REPO, GGUF);
    haveCurl.value = await which('curl');
    haveAria.value = await which('aria2c');
    if (!haveCurl.value) console.warn('curl not found: the curl test is skipped');
    if (!haveAria.value) console.warn('aria2c not found (apt-get install aria2): the aria2c test is skipped');
  });
  afterAll(async () => {
    await h?.cleanup();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  it('snapshotDownload and downloadFileToCacheDir build the same cache dir through Ferry as from the Hub directly', async () => {
    await snapshotDownload({ repo: REPO, cacheDir: join(scratch, 'direct'), hubUrl: h.hub.url });
    await snapshotDownload({ repo: REPO, cacheDir: join(scratch, 'ferry'), hubUrl: h.hubUrl });
    const direct = await describeCache(join(scratch, 'direct'));
    expect(Object.keys(direct).some((p) => p.includes(`blobs/${ggufSha}`))).toBe(true);
    expect(await describeCache(join(scratch, 'ferry'))).toEqual(direct);

    await downloadFileToCacheDir({ repo: REPO, path: GGUF, cacheDir: join(scratch, 'one-direct'), hubUrl: h.hub.url });
    await downloadFileToCacheDir({ repo: REPO, path: GGUF, cacheDir: join(scratch, 'one-ferry'), hubUrl: h.hubUrl });
    expect(await describeCache(join(scratch, 'one-ferry'))).toEqual(await describeCache(join(scratch, 'one-direct')));
  });

  it('a second run into a fresh cache dir is served by Ferry with zero upstream requests', async () => {
    const before = h.hub.log.length;
    await snapshotDownload({ repo: REPO, cacheDir: join(scratch, 'second'), hubUrl: h.hubUrl });
    await downloadFileToCacheDir({ repo: REPO, path: GGUF, cacheDir: join(scratch, 'second-one'), hubUrl: h.hubUrl });
    expect(h.hub.log.slice(before)).toEqual([]);
    expect(await describeCache(join(scratch, 'second'))).toEqual(await describeCache(join(scratch, 'direct')));
  });

  it('curl -r gives the right bytes, a 416 and a 304', async ({ skip }) => {
    if (!haveCurl.value) skip();
    const url = `${h.hubUrl}/${REPO}/resolve/main/${GGUF}`;
    const whole = await run('curl', ['-sS', '-o', join(scratch, 'curl-whole'), '-w', '%{http_code}', url]);
    expect(whole.stdout).toBe('200');
    expect(sha256(await readFile(join(scratch, 'curl-whole')))).toBe(ggufSha);
    const part = await run('curl', ['-sS', '-r', '1000-1999', '-o', join(scratch, 'curl-part'), '-w', '%{http_code}', url]);
    expect(part.stdout).toBe('206');
    expect((await readFile(join(scratch, 'curl-part'))).equals((await readFile(join(scratch, 'curl-whole'))).subarray(1000, 2000))).toBe(true);
    const bad = await run('curl', ['-sS', '-r', `${GGUF_SIZE}-`, '-o', '/dev/null', '-w', '%{http_code}', url]);
    expect(bad.stdout).toBe('416');
    const etag = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: "${ggufSha}"`, url]);
    expect(etag.stdout).toBe('304');
  });

  it('aria2c -x4 fetches the file in four ranged connections with the right bytes', async ({ skip }) => {
    if (!haveAria.value) skip();
    const url = `${h.hubUrl}/${REPO}/resolve/main/${GGUF}`;
    await run('aria2c', ['-q', '-x4', '-s4', '-k1M', '--allow-overwrite=true', '--auto-file-renaming=false', '-d', scratch, '-o', 'aria.gguf', url]);
    expect(sha256(await readFile(join(scratch, 'aria.gguf')))).toBe(ggufSha);
  });

  it('offline mode serves the same snapshot with the fake Hub stopped', async () => {
    await h.hub.close();
    const config = { ...loadConfig(h.env), mirrorOffline: true };
    const ctx = new FerryContext(config);
    const app = await buildApp({ services: await ctx.apiServices() });
    try {
      await app.listen({ port: 0, host: '127.0.0.1' });
      const hubUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/hub`;
      await snapshotDownload({ repo: REPO, cacheDir: join(scratch, 'offline'), hubUrl });
      expect(await describeCache(join(scratch, 'offline'))).toEqual(await describeCache(join(scratch, 'direct')));
      const missing = await fetch(`${hubUrl}/api/models/acme/never-seen`);
      expect(missing.status).toBe(504);
    } finally {
      await app.close();
      await ctx.close();
    }
  });
});
