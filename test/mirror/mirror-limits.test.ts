import { afterEach, describe, expect, it } from 'vitest';
import { download, startMirrorHarness, type MirrorHarness } from './mirror-harness.js';

const REPO = 'acme/limits-GGUF';
const FILE = 'Limits-Q4_K_M.gguf';
const SIZE = 8 * 1024 * 1024;

/** What helper #10's API guard does (an onRequest hook): routes marked `config.public` need no token. */
function addTokenGuard(h: MirrorHarness, token: string): void {
  h.app.addHook('onRequest', async (req, reply) => {
    if ((req.routeOptions.config as { public?: boolean }).public) return;
    if (req.headers.authorization !== `Bearer ${token}`) return reply.code(401).send({ error: { code: 'auth.required', message: 'token required' } });
  });
}

describe('mirror limits', () => {
  let h: MirrorHarness | undefined;
  afterEach(async () => {
    await h?.cleanup();
    h = undefined;
  });

  for (const mirrorPublic of [false, true]) {
    it(`mirror_public = ${mirrorPublic}: /hub ${mirrorPublic ? 'is readable without' : 'needs'} the API token`, async () => {
      h = await startMirrorHarness({ extraToml: `mirror_public = ${mirrorPublic}\n`, worker: false, listen: false });
      addTokenGuard(h, 'ferry-api-token');
      await h.listen();
      h.hub.addRepo({ id: REPO, files: [{ path: 'README.md', content: Buffer.from('x') }] });
      const anonymous = await fetch(`${h.hubUrl}/api/models/${REPO}`);
      expect(anonymous.status).toBe(mirrorPublic ? 200 : 401);
      const withToken = await fetch(`${h.hubUrl}/api/models/${REPO}`, { headers: { authorization: 'Bearer ferry-api-token' } });
      expect(withToken.status).toBe(200);
      // The rest of the API is never made public by it.
      expect((await fetch(`${h.base}/api/models`)).status).toBe(401);
    });
  }

  it('bounds concurrent file streams per client address (mirror_max_streams_per_client)', async () => {
    h = await startMirrorHarness({ extraToml: 'mirror_max_streams_per_client = 2\n' });
    h.hub.addRepo({ id: REPO, files: [{ path: FILE, size: SIZE, seed: 4 }] });
    h.hub.fault(REPO, FILE, { kind: 'slow', bytesPerSecond: 4 * 1024 * 1024 });
    const url = `${h.hubUrl}/${REPO}/resolve/main/${FILE}`;
    const first = [download(url), download(url)];
    await new Promise((r) => setTimeout(r, 500));
    const third = await fetch(url);
    expect(third.status).toBe(429);
    expect((await third.json()).error.code).toBe('mirror.too_many_streams');
    // HEAD sends no body and takes no slot.
    expect((await fetch(url, { method: 'HEAD' })).status).toBe(200);
    for (const r of await Promise.all(first)) expect(r).toMatchObject({ status: 200, complete: true, bytes: SIZE });
    const after = await download(url);
    expect(after).toMatchObject({ status: 200, complete: true, bytes: SIZE });
  });
});
