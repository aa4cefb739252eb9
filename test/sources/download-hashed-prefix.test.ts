import { appendFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { downloadFile, type DownloadTarget } from '../../src/sources/huggingface/download-file.js';
import { HfClient } from '../../src/sources/huggingface/hf-client.js';
import { startFakeHub, type FakeHub } from '../support/fake-hub.js';
import { sha256OfFile } from '../support/registry-check.js';

const REPO = 'acme/prefix-GGUF';
const FILE = 'Prefix-Q4_K_M.gguf';
const SIZE = 3 * 1024 * 1024 + 11;

describe('bytes land where they are hashed', () => {
  let hub: FakeHub;
  let dir: string;
  let client: HfClient;
  beforeEach(async () => {
    hub = await startFakeHub();
    hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 5 }] });
    dir = await mkdtemp(join(tmpdir(), 'ferry-prefix-'));
    client = new HfClient({ endpoint: hub.url });
  });
  afterEach(async () => {
    await hub.close();
    await rm(dir, { recursive: true, force: true });
  });

  it.each([[true], [false]])('a resume after foreign bytes were appended to the partial cuts them off (direct io %s)', async (directIo) => {
    const resolved = await client.resolveFile(REPO, 'main', FILE);
    const target: DownloadTarget = { repo: REPO, revision: resolved.commit!, path: FILE, size: resolved.size, sha256: resolved.sha256 };
    const partPath = join(dir, 'x.part');
    hub.fault(REPO, FILE, { kind: 'cut', afterBytes: 1_000_000 });
    const result = await downloadFile({
      client,
      target,
      partPath,
      signal: new AbortController().signal,
      retryBaseMs: 20,
      directIo,
      // Between the cut and the resume, a second writer (a cut-off worker carrying on) appends to the partial.
      onEvent: (m) => {
        if (m.includes('retrying')) appendFileSync(partPath, Buffer.alloc(155_648, 0x55));
      },
    });
    const expected = await hub.sha256(REPO, FILE);
    expect(result.sha256).toBe(expected);
    expect(await sha256OfFile(partPath)).toBe(expected); // the file, read back, is what was hashed
    const gets = hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET');
    expect(gets).toHaveLength(2);
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(gets[1].range ?? '')?.[1]);
    expect(resumedAt).toBeGreaterThan(0);
    expect(resumedAt).toBeLessThanOrEqual(1_000_000);
  });
});
