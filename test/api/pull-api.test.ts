import { readdir } from 'node:fs/promises';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startPullHarness, type PullHarness } from '../support/pull-harness.js';

describe('pull routes with hostile input', () => {
  let h: PullHarness;
  beforeAll(async () => {
    h = await startPullHarness({ worker: false });
    h.hub.addRepo({ id: 'acme/ok', files: [{ path: 'ok.gguf', size: 1000, seed: 1 }] });
  });
  afterAll(async () => h.cleanup());

  const bad: Array<[string, string, unknown, number, string]> = [
    ['.. in the id', '/api/models/..%2F..%2Fetc/pull', { hf_repo: 'acme/ok', hf_file: 'ok.gguf' }, 400, 'model.invalid_id'],
    ['dot-dot id', '/api/models/a..b/pull', { hf_repo: 'acme/ok', hf_file: 'ok.gguf' }, 400, 'model.invalid_id'],
    ['uppercase id', '/api/models/Ok/pull', { hf_repo: 'acme/ok', hf_file: 'ok.gguf' }, 400, 'model.invalid_id'],
    ['control character in id', '/api/models/a%0Ab/pull', {}, 400, 'model.invalid_id'],
    ['path traversal in hf_file', '/api/models/ok/pull', { hf_repo: 'acme/ok', hf_file: '../../etc/passwd' }, 422, 'model.invalid_source'],
    ['absolute hf_file', '/api/models/ok/pull', { hf_repo: 'acme/ok', hf_file: '/etc/passwd' }, 422, 'model.invalid_source'],
    ['traversal inside a list', '/api/models/ok/pull', { hf_repo: 'acme/ok', hf_file: ['ok.gguf', 'a/../../b'] }, 422, 'model.invalid_source'],
    ['bad repo id', '/api/models/ok/pull', { hf_repo: '../x', hf_file: 'ok.gguf' }, 422, 'model.invalid_source'],
    ['bad revision', '/api/models/ok/pull', { hf_repo: 'acme/ok', hf_file: 'ok.gguf', revision: '../../x' }, 422, 'model.invalid_source'],
    ['bad sha256', '/api/models/ok/pull', { hf_repo: 'acme/ok', hf_file: 'ok.gguf', sha256: 'xyz' }, 422, 'model.invalid_source'],
    ['unknown key', '/api/models/ok/pull', { hf_repo: 'acme/ok', hf_file: 'ok.gguf', token: 'x' }, 400, 'request.invalid'],
    ['wrong type', '/api/models/ok/pull', { hf_repo: 42 }, 400, 'request.invalid'],
    ['no coordinates for an unknown id', '/api/models/ok/pull', {}, 422, 'model.invalid_source'],
  ];

  for (const [name, url, payload, status, code] of bad) {
    it(`refuses ${name} with ${status} ${code}`, async () => {
      const res = await h.app.inject({ method: 'POST', url, payload: payload as object });
      expect(res.statusCode, res.body).toBe(status);
      expect(res.json().error.code).toBe(code);
    });
  }

  it('refuses malformed JSON and huge bodies with 4xx', async () => {
    const malformed = await h.app.inject({ method: 'POST', url: '/api/models/ok/pull', headers: { 'content-type': 'application/json' }, payload: '{"hf_repo":' });
    expect(malformed.statusCode).toBe(400);
    const huge = await h.app.inject({ method: 'POST', url: '/api/models/ok/pull', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ hf_repo: 'acme/ok', hf_file: 'x'.repeat(200_000) }) });
    expect(huge.statusCode).toBe(413);
    expect(huge.json().error.code).toBe('request.too_large');
  });

  it('wrote nothing and queued nothing for any of them', async () => {
    expect(await readdir(h.ctx.config.pullRoot).catch(() => [])).toEqual([]);
    const queue = (await h.ctx.pullQueueStore()).queue;
    expect(await queue.count()).toBe(0);
  });

  it('answers 404 model.pull_job_not_found for status and cancel of a model never pulled', async () => {
    for (const url of ['/api/models/never/pull/status', '/api/models/never/pull/stream']) {
      const res = await h.app.inject({ method: 'GET', url });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('model.pull_job_not_found');
    }
    const cancel = await h.app.inject({ method: 'POST', url: '/api/models/never/pull/cancel' });
    expect(cancel.statusCode).toBe(404);
  });
});

describe('pull status stream and list', () => {
  let h: PullHarness;
  beforeAll(async () => {
    h = await startPullHarness();
    h.hub.addRepo({ id: 'acme/sse', files: [{ path: 'sse.gguf', size: 3 * 1024 * 1024, seed: 2 }] });
    h.hub.fault('acme/sse', 'sse.gguf', { kind: 'slow', bytesPerSecond: 2 * 1024 * 1024 });
    await h.app.listen({ port: 0, host: '127.0.0.1' });
  });
  afterAll(async () => h.cleanup());

  it('streams status events until the pull completes, and lists it in /api/pulls', async () => {
    const post = await h.app.inject({ method: 'POST', url: '/api/models/sse/pull', payload: { hf_repo: 'acme/sse', hf_file: 'sse.gguf' } });
    expect(post.statusCode).toBe(202);
    const { port } = h.app.server.address() as { port: number };
    const events = await new Promise<Array<{ event: string; data: any }>>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/api/models/sse/pull/stream' }, (res) => {
        expect(res.headers['content-type']).toContain('text/event-stream');
        let buf = '';
        res.on('data', (d) => (buf += d));
        res.on('end', () =>
          resolve(
            buf
              .split('\n\n')
              .filter(Boolean)
              .map((block) => ({ event: /event: (.*)/.exec(block)![1], data: JSON.parse(/data: (.*)/.exec(block)![1]) })),
          ),
        );
      });
      req.on('error', reject);
      req.end();
    });
    const statuses = events.filter((e) => e.event === 'status').map((e) => e.data);
    expect(statuses.length).toBeGreaterThan(2);
    expect(statuses.some((s) => s.state === 'running' && s.bytes_downloaded > 0 && s.bytes_downloaded < s.bytes_total)).toBe(true);
    const running = statuses.find((s) => s.state === 'running' && s.throughput_bps > 0);
    expect(running?.eta_s).toBeGreaterThanOrEqual(0);
    expect(statuses.at(-1).state).toBe('completed');
    expect(events.at(-1)!.event).toBe('end');
    const bytes = statuses.map((s) => s.bytes_downloaded);
    expect([...bytes].sort((a, b) => a - b)).toEqual(bytes); // never goes backwards
    const list = (await h.app.inject({ method: 'GET', url: '/api/pulls' })).json();
    expect(list.pulls.map((p: { model_id: string }) => p.model_id)).toContain('sse');
  });
});
