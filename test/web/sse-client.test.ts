import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { backoffDelay, followSse, isPermanent, SseParser, type SseEvent } from '../../web/src/sse-client.js';

describe('SSE parser', () => {
  const parse = (chunks: string[]): SseEvent[] => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    for (const c of chunks) parser.push(c);
    parser.end();
    return events;
  };

  it('parses named events, multi-line data, ids and comments', () => {
    const text = ': keep-alive\n\nevent: status\ndata: {"a":1}\n\ndata: line one\ndata: line two\nid: 7\n\nevent: end\ndata: {}\n\n';
    expect(parse([text])).toEqual([
      { event: 'status', data: '{"a":1}' },
      { event: 'message', data: 'line one\nline two', id: '7' },
      { event: 'end', data: '{}', id: '7' },
    ]);
  });

  it('gives the same events however the stream is cut, with LF, CRLF or CR line ends', () => {
    const text = 'event: status\ndata: {"bytes": 42}\n\nevent: end\ndata: {}\n\n';
    const expected = [
      { event: 'status', data: '{"bytes": 42}' },
      { event: 'end', data: '{}' },
    ];
    for (const ending of ['\n', '\r\n', '\r']) {
      const body = text.replace(/\n/g, ending);
      expect(parse([body]), JSON.stringify(ending)).toEqual(expected);
      for (let cut = 1; cut < body.length; cut++) expect(parse([body.slice(0, cut), body.slice(cut)]), `cut at ${cut}`).toEqual(expected);
      expect(parse([...body])).toEqual(expected); // one character at a time
    }
  });

  it('keeps an event whose blank line has not arrived yet, and drops events without data', () => {
    const events: SseEvent[] = [];
    const parser = new SseParser((e) => events.push(e));
    parser.push('event: status\ndata: x\n');
    expect(events).toEqual([]);
    parser.push('\nevent: nothing\n\n');
    expect(events).toEqual([{ event: 'status', data: 'x' }]);
    parser.push('data:no-space\n\n');
    expect(events[1]).toEqual({ event: 'message', data: 'no-space' });
  });
});

describe('reconnecting event stream (a real HTTP server on loopback)', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });

  async function serve(handler: (n: number, req: IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; connections: () => number; auth: string[] }> {
    let n = 0;
    const auth: string[] = [];
    server = createServer((req, res) => {
      auth.push(String(req.headers.authorization));
      handler(n++, req, res);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/stream`, connections: () => n, auth };
  }

  const sse = (res: ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream' });

  it('reconnects after the connection drops mid-stream, with the header each time, until the end event', async () => {
    const srv = await serve((n, _req, res) => {
      sse(res);
      if (n === 0) {
        res.write('event: status\ndata: {"bytes":1}\n\nevent: status\ndata: {"by'); // cut mid-event
        setTimeout(() => res.destroy(), 20);
      } else {
        res.end('event: status\ndata: {"bytes":2}\n\nevent: end\ndata: {}\n\n');
      }
    });
    const events: string[] = [];
    const retries: number[] = [];
    let ended = false;
    await followSse({
      connect: (signal) => fetch(srv.url, { signal, headers: { authorization: 'Bearer t0ken' } }),
      onEvent: (e) => {
        events.push(`${e.event}:${e.data}`);
        if (e.event === 'end') ended = true;
      },
      isDone: () => ended,
      onRetry: (ms) => retries.push(ms),
      signal: new AbortController().signal,
      initialDelayMs: 20,
    });
    // The half event of the dropped connection is never delivered.
    expect(events).toEqual(['status:{"bytes":1}', 'status:{"bytes":2}', 'end:{}']);
    expect(srv.connections()).toBe(2);
    expect(retries).toEqual([20]);
    expect(srv.auth).toEqual(['Bearer t0ken', 'Bearer t0ken']);
  });

  it('backs off doubling while the server fails, up to the cap, and starts over after an event', async () => {
    const srv = await serve((n, _req, res) => {
      if (n < 4) return void res.writeHead(503).end();
      if (n === 5) return void res.writeHead(502).end();
      sse(res);
      if (n === 4) return void res.end('event: status\ndata: {}\n\n'); // closes without an end event
      res.end('event: end\ndata: {}\n\n');
    });
    const retries: number[] = [];
    let ended = false;
    await followSse({
      connect: (signal) => fetch(srv.url, { signal }),
      onEvent: (e) => (ended ||= e.event === 'end'),
      isDone: () => ended,
      onRetry: (ms) => retries.push(ms),
      signal: new AbortController().signal,
      initialDelayMs: 10,
      maxDelayMs: 50,
    });
    // 503 x4: 10, 20, 40, 50 (capped); the event resets: closed -> 10; the 502 -> 20.
    expect(retries).toEqual([10, 20, 40, 50, 10, 20]);
    expect(srv.connections()).toBe(7);
  });

  it('stops at once on a 4xx that retrying cannot fix, and when aborted', async () => {
    const srv = await serve((_n, _req, res) => void res.writeHead(404).end());
    await expect(
      followSse({ connect: (signal) => fetch(srv.url, { signal }), onEvent: () => undefined, isDone: () => false, signal: new AbortController().signal, initialDelayMs: 10 }),
    ).rejects.toMatchObject({ status: 404 });
    expect(srv.connections()).toBe(1);

    const controller = new AbortController();
    const hanging = await (async () => {
      await new Promise<void>((r) => server!.close(() => r()));
      return serve((_n, _req, res) => {
        sse(res);
        res.write(': open\n\n');
        setTimeout(() => controller.abort(), 50);
      });
    })();
    await followSse({ connect: (signal) => fetch(hanging.url, { signal }), onEvent: () => undefined, isDone: () => false, signal: controller.signal });
    expect(hanging.connections()).toBe(1);
  });

  it('classifies failures and computes delays', () => {
    expect(isPermanent({ status: 404 })).toBe(true);
    expect(isPermanent({ status: 401 })).toBe(true);
    expect(isPermanent({ status: 429 })).toBe(false);
    expect(isPermanent({ status: 408 })).toBe(false);
    expect(isPermanent({ status: 503 })).toBe(false);
    expect(isPermanent(new TypeError('fetch failed'))).toBe(false);
    expect([0, 1, 2, 3, 10, 100].map((a) => backoffDelay(a, 500, 10_000))).toEqual([500, 1000, 2000, 4000, 10_000, 10_000]);
  });
});
