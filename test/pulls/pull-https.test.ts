import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startPullHarness, TEST_CONFIG_TOML, type PullHarness } from '../support/pull-harness.js';
import { TEST_TLS } from '../support/test-tls.js';
import { spawnWorker } from '../support/worker-process.js';

const REPO = 'acme/secure-GGUF';
const FILE = 'Secure-Q4_K_M.gguf';
const SIZE = 5 * 1024 * 1024 + 3;

// The real Hub and its CDN are https: the whole pull (got for the API, socketGet for the body)
// against a fake Hub that speaks TLS, in a worker process that trusts the test CA the way a
// user with a private mirror would, through NODE_EXTRA_CA_CERTS.
describe.each([
  ['in the worker', TEST_CONFIG_TOML],
  ['on a download thread', `${TEST_CONFIG_TOML}download_thread_min_bytes = 0\n`],
])('pulls over https, %s', (_mode, configToml) => {
  let h: PullHarness;
  beforeEach(async () => {
    h = await startPullHarness({ worker: false, hubTls: true, hubToken: true, configToml });
    h.hub.addRepo({ id: REPO, gated: true, files: [{ path: FILE, size: SIZE, seed: 11 }] });
  });
  afterEach(async () => h.cleanup());

  it('downloads, verifies and installs the file, resuming after a cut, with the token for the hub only', async () => {
    h.hub.fault(REPO, FILE, { kind: 'cut', afterBytes: 2_000_000 });
    const worker = spawnWorker({ ...h.env, NODE_EXTRA_CA_CERTS: TEST_TLS.certPath });
    try {
      await worker.ready;
      const res = await h.app.inject({ method: 'POST', url: '/api/models/secure/pull', payload: { hf_repo: REPO, hf_file: FILE } });
      expect(res.statusCode, res.body).toBe(202);
      const done = await h.waitForState('secure', ['completed', 'failed']);
      expect(done.state, `${JSON.stringify(done)}\n${worker.output()}`).toBe('completed');
      expect(done.sha256).toBe(await h.hub.sha256(REPO, FILE));
      // The file on disk, read back (the status digest is the stream's).
      expect(createHash('sha256').update(await readFile(done.path!)).digest('hex')).toBe(done.sha256);
      const cdnGets = h.hub.log.filter((l) => l.host === 'cdn' && l.method === 'GET');
      expect(cdnGets.map((l) => l.range)).toEqual([undefined, expect.stringMatching(/^bytes=[1-9]\d*-$/)]);
      expect(cdnGets.every((l) => l.authorization === undefined)).toBe(true);
      expect(h.hub.log.filter((l) => l.host === 'hub' && l.method === 'GET').every((l) => l.authorization === `Bearer ${h.hub.token}`)).toBe(true);
    } finally {
      worker.child.kill('SIGTERM');
      await worker.child;
    }
  });
});
