import { createHash } from 'node:crypto';
import { get as httpGet } from 'node:http';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';

export interface MirrorHarness extends PullHarness {
  /** Ferry's /hub base URL on a real loopback listen: what HF_ENDPOINT / hubUrl would be. */
  hubUrl: string;
  base: string;
  /** Starts listening (already done unless started with `listen: false`). */
  listen(): Promise<void>;
  /** Pulls `file` of `repo` into the registry as `id` through Ferry's own API; resolves with the row. */
  pull(id: string, repo: string, file: string): Promise<{ path: string; sha256: string }>;
}

/** A pull harness whose API listens on loopback, with the mirror's config keys added. */
export async function startMirrorHarness(opts: { extraToml?: string; worker?: boolean; hubToken?: boolean; listen?: boolean } = {}): Promise<MirrorHarness> {
  const h = await startPullHarness({ configToml: `${TEST_CONFIG_TOML}${opts.extraToml ?? ''}`, worker: opts.worker, hubToken: opts.hubToken });
  const mirror = Object.assign(h, {
    base: '',
    hubUrl: '',
    async listen() {
      await h.app.listen({ port: 0, host: '127.0.0.1' });
      mirror.base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
      mirror.hubUrl = `${mirror.base}/hub`;
    },
    async pull(id: string, repo: string, file: string) {
      const res = await h.app.inject({ method: 'POST', url: `/api/models/${id}/pull`, payload: { hf_repo: repo, hf_file: file } });
      if (res.statusCode !== 202) throw new Error(`pull ${id}: ${res.statusCode} ${res.body}`);
      const done = await h.waitForState(id, ['completed', 'failed']);
      if (done.state !== 'completed') throw new Error(`pull ${id} ${done.state}: ${done.error}`);
      return { path: done.path!, sha256: done.sha256! };
    },
  });
  if (opts.listen !== false) await mirror.listen();
  return mirror;
}

export function sha256(data: Buffer | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Every file under `root` with its size and mtime: compared before and after hostile requests. */
export async function fileSnapshot(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else out.push(`${path} ${(await stat(path)).size} ${(await stat(path)).mtimeMs}`);
    }
  };
  await walk(root);
  return out.sort();
}

export interface Download {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  bytes: number;
  sha256: string;
  /** The body reached its end (false: the connection was cut before). */
  complete: boolean;
  error?: string;
}

/** A GET read to its end (or its abort), hashed as it streams: nothing big held in memory. */
export function download(url: string, headers: Record<string, string> = {}): Promise<Download> {
  return new Promise((resolve) => {
    const hash = createHash('sha256');
    let bytes = 0;
    const req = httpGet(url, { headers }, (res) => {
      let settled = false;
      const done = (complete: boolean, error?: string) => {
        if (settled) return;
        settled = true;
        resolve({ status: res.statusCode!, headers: res.headers, bytes, sha256: hash.digest('hex'), complete, ...(error ? { error } : {}) });
      };
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.length;
      });
      res.on('end', () => done(res.complete));
      res.on('aborted', () => done(false, 'aborted'));
      res.on('error', (err) => done(false, err.message));
      res.on('close', () => done(res.complete));
    });
    req.on('error', (err) => resolve({ status: 0, headers: {}, bytes, sha256: '', complete: false, error: err.message }));
  });
}
