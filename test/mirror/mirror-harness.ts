import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';

export interface MirrorHarness extends PullHarness {
  /** Ferry's /hub base URL on a real loopback listen: what HF_ENDPOINT / hubUrl would be. */
  hubUrl: string;
  base: string;
  /** Pulls `file` of `repo` into the registry as `id` through Ferry's own API; resolves with the row. */
  pull(id: string, repo: string, file: string): Promise<{ path: string; sha256: string }>;
}

/** A pull harness whose API listens on loopback, with the mirror's config keys added. */
export async function startMirrorHarness(opts: { extraToml?: string; worker?: boolean; hubToken?: boolean } = {}): Promise<MirrorHarness> {
  const h = await startPullHarness({ configToml: `${TEST_CONFIG_TOML}${opts.extraToml ?? ''}`, worker: opts.worker, hubToken: opts.hubToken });
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const base = `http://127.0.0.1:${(h.app.server.address() as AddressInfo).port}`;
  return Object.assign(h, {
    base,
    hubUrl: `${base}/hub`,
    async pull(id: string, repo: string, file: string) {
      const res = await h.app.inject({ method: 'POST', url: `/api/models/${id}/pull`, payload: { hf_repo: repo, hf_file: file } });
      if (res.statusCode !== 202) throw new Error(`pull ${id}: ${res.statusCode} ${res.body}`);
      const done = await h.waitForState(id, ['completed', 'failed']);
      if (done.state !== 'completed') throw new Error(`pull ${id} ${done.state}: ${done.error}`);
      return { path: done.path!, sha256: done.sha256! };
    },
  });
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
