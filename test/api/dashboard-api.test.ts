import { hostname } from 'node:os';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/api/build-app.js';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';
import { spawnWorker, type WorkerProcess } from '../support/worker-process.js';
import { waitFor } from '../support/slot-harness.js';

const MiB = 1024 * 1024;

describe('GET /api/workers', () => {
  let h: PullHarness;
  let child: WorkerProcess | undefined;
  beforeAll(async () => {
    h = await startPullHarness();
    h.hub.addRepo({ id: 'acme/slow', files: [{ path: 'slow.gguf', size: 64 * MiB, seed: 4 }] });
    h.hub.fault('acme/slow', 'slow.gguf', { kind: 'slow', bytesPerSecond: 2 * MiB });
  });
  afterAll(async () => {
    if (child) {
      child.child.kill('SIGTERM');
      await child.child;
    }
    await h.cleanup();
  });

  it('lists each worker process by host:pid with its queues, and the pull it is running', async () => {
    // A worker's connections are named once they are up; the pull worker's may come a moment later.
    const first = await waitFor('the in-process worker on all three queues', async () => {
      const res = await h.app.inject('/api/workers');
      expect(res.statusCode, res.body).toBe(200);
      return res.json().workers[0]?.queues.length === 3 ? res : undefined;
    });
    expect(first.json()).toMatchObject({ count: 1, workers: [{ name: `${hostname()}:${process.pid}`, connected: true, host: hostname(), pid: process.pid, queues: ['pull', 'verify', 'warm'], jobs: [] }] });

    child = spawnWorker(h.env);
    await child.ready;
    const two = await waitFor('two workers', async () => {
      const body = (await h.app.inject('/api/workers')).json();
      return body.count === 2 && body.workers.every((w: { queues: string[] }) => w.queues.length === 3) ? body : undefined;
    });
    expect(two.workers.map((w: { name: string }) => w.name).sort()).toEqual([`${hostname()}:${process.pid}`, `${hostname()}:${child.child.pid}`].sort());

    const post = await h.app.inject({ method: 'POST', url: '/api/models/slow/pull', payload: { hf_repo: 'acme/slow', hf_file: 'slow.gguf' } });
    expect(post.statusCode, post.body).toBe(202);
    const busy = await waitFor('a worker running the pull', async () => {
      const body = (await h.app.inject('/api/workers')).json();
      return body.workers.find((w: { jobs: unknown[] }) => w.jobs.length > 0);
    });
    expect(busy.jobs).toEqual([{ queue: 'pull', id: post.json().id, model_id: 'slow', slot: null, started_at: expect.any(Number) }]);
    expect([process.pid, child.child.pid]).toContain(busy.pid);
    // Only what the view needs: no job data, no connection addresses.
    expect(JSON.stringify(busy)).not.toContain('hf_repo');
    expect(JSON.stringify(busy)).not.toContain('127.0.0.1');
    await h.app.inject({ method: 'POST', url: '/api/models/slow/pull/cancel' });
    await h.waitForState('slow', ['cancelled']);
  });
});

describe('the dashboard shell', () => {
  let web: string;
  beforeAll(async () => {
    web = await mkdtemp(join(tmpdir(), 'ferry-web-'));
    await mkdir(join(web, 'assets'));
    await writeFile(join(web, 'index.html'), '<!doctype html><script type="module" src="/assets/app-abc123.js"></script>');
    await writeFile(join(web, 'assets', 'app-abc123.js'), `console.log(${JSON.stringify('x'.repeat(4000))});`);
    await writeFile(join(web, 'assets', 'notes.txt'), 'not served: unknown type');
  });
  afterAll(() => rm(web, { recursive: true, force: true }));

  // Only what building the app reads; these tests call no service.
  const app = (webRoot: string) => buildApp({ services: { bento: { limits: { maxBytes: 1024 } } } as never, webRoot });

  it('serves index.html at / with a strict CSP, and hashed assets as immutable, gzipped when asked', async () => {
    const a = await app(web);
    const page = await a.inject('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");
    expect(page.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(page.body).toContain('/assets/app-abc123.js');
    const js = await a.inject({ url: '/assets/app-abc123.js', headers: { 'accept-encoding': 'gzip, br' } });
    expect(js.statusCode).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['content-encoding']).toBe('gzip');
    expect(js.headers['cache-control']).toContain('immutable');
    expect(gunzipSync(js.rawPayload).toString()).toContain('console.log');
    const plain = await a.inject('/assets/app-abc123.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body).toContain('console.log');
    await a.close();
  });

  it('serves only files found in the build: traversal, unknown names and unknown types are 404', async () => {
    const a = await app(web);
    for (const url of ['/assets/notes.txt', '/assets/..%2Findex.html', '/assets/%2e%2e%2f%2e%2e%2fpackage.json', '/assets/nope.js', '/index.html/../package.json']) {
      const res = await a.inject(url);
      expect(res.statusCode, url).toBe(404);
      expect(res.json().error.code, url).toBe('route.not_found');
    }
    await a.close();
  });

  it('marks the shell routes public (the token guard lets them through) and says how to build when dist/web is missing', async () => {
    const a = await app(join(web, 'missing'));
    const publicRoutes: string[] = [];
    a.addHook('onRequest', async (req) => {
      if ((req.routeOptions.config as { public?: boolean }).public) publicRoutes.push(req.url);
    });
    const res = await a.inject('/');
    expect(res.statusCode).toBe(503);
    expect(res.json().error).toMatchObject({ code: 'dashboard.not_built', hint: expect.stringContaining('npm run build') });
    await a.inject('/assets/x.js');
    await a.inject('/api/workers');
    expect(publicRoutes).toEqual(['/', '/assets/x.js']);
    await a.close();
  });
});
