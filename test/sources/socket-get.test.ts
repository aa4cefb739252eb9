import { randomBytes } from 'node:crypto';
import { createServer as createHttpsServer } from 'node:https';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { socketGet, type SocketResponse } from '../../src/sources/http/socket-get.js';
import type { ByteSink } from '../../src/util/byte-sink.js';
import { TEST_TLS } from '../support/test-tls.js';

const { cert, key } = TEST_TLS;

/**
 * A sink that lends regions of one backing buffer, at most `lendBytes` at a time, and can be
 * made to have nothing to lend (as when every staging buffer is on its way to the disk).
 */
class TestSink implements ByteSink {
  readonly backing: Buffer;
  committed = 0;
  seen: Buffer[] = [];
  waits = 0;
  private blocked: Promise<void> | undefined;
  failWith: Error | undefined;

  constructor(capacity: number, private readonly lendBytes = capacity) {
    this.backing = Buffer.alloc(capacity);
  }

  lend(): Buffer | undefined {
    if (this.blocked || this.failWith) return undefined;
    return this.backing.subarray(this.committed, Math.min(this.backing.length, this.committed + this.lendBytes));
  }

  commit(n: number): void {
    this.committed += n;
  }

  async writable(): Promise<void> {
    this.waits++;
    await this.blocked;
    if (this.failWith) throw this.failWith;
  }

  /** Nothing to lend for `ms`. */
  block(ms: number): void {
    this.blocked = sleep(ms).then(() => void (this.blocked = undefined));
  }

  get bytes(): Buffer {
    return this.backing.subarray(0, this.committed);
  }
}

/** Collects what onData sees. */
function recorder() {
  const pieces: Buffer[] = [];
  return {
    onData: (bytes: Buffer) => void pieces.push(Buffer.from(bytes)),
    get bytes() {
      return Buffer.concat(pieces);
    },
    get pieces() {
      return pieces.length;
    },
  };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A raw TCP server: `answer` writes whatever bytes it likes; `requests` gets what clients sent. */
async function rawServer(answer: (socket: Socket) => void | Promise<void>) {
  const requests: string[] = [];
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      if (!text.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      requests.push(text);
      void Promise.resolve(answer(socket)).catch(() => socket.destroy());
    };
    socket.on('data', onData);
    socket.on('error', () => undefined);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/blobs/x?sig=1`,
    requests,
    get connections() {
      return connections;
    },
  };
}

const head = (lines: string[]) => Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
const get = (url: string, headers: Record<string, string> = {}, signal?: AbortSignal) => socketGet(url, headers, { headTimeoutMs: 5000, signal });

describe('socketGet', () => {
  it('reads a Content-Length body straight into the memory the sink lends, in order', async () => {
    const body = randomBytes(3 * 1024 * 1024 + 17);
    const server = await rawServer(async (socket) => {
      socket.write(head(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`, 'X-Repo-Commit: abc']));
      for (let at = 0; at < body.length; at += 200_000) socket.write(body.subarray(at, at + 200_000));
      socket.end();
    });
    const response = await get(server.url, { range: 'bytes=0-', 'user-agent': 'ferry-test' });
    expect(response.status).toBe(200);
    expect(response.contentLength).toBe(body.length);
    expect(response.headers['x-repo-commit']).toBe('abc');
    const sink = new TestSink(body.length, 100_000);
    const seen = recorder();
    await response.readInto(sink, seen.onData);
    expect(sink.bytes.equals(body)).toBe(true);
    expect(seen.bytes.equals(body)).toBe(true);
    // Only what came with the head, and the one read already set up for scratch before readInto, was copied.
    expect(response.copiedBytes).toBeLessThanOrEqual(64 * 1024 + 200_000);
    expect(server.requests[0]).toMatch(/^GET \/blobs\/x\?sig=1 HTTP\/1\.1\r\nHost: 127\.0\.0\.1:\d+\r\nrange: bytes=0-\r\nuser-agent: ferry-test\r\nConnection: close\r\n\r\n$/);
  });

  it('delivers the body bytes that arrive in the same packet as the head first', async () => {
    const body = randomBytes(50_000);
    const server = await rawServer((socket) => {
      socket.write(Buffer.concat([head(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`]), body.subarray(0, 1000)]));
      setTimeout(() => socket.end(body.subarray(1000)), 50);
    });
    const response = await get(server.url);
    const sink = new TestSink(body.length);
    await response.readInto(sink, () => undefined);
    expect(sink.bytes.equals(body)).toBe(true);
  });

  it('takes a head that arrives a byte at a time', async () => {
    const text = head(['HTTP/1.1 206 Partial Content', 'Content-Range: bytes 5-9/10', 'Content-Length: 5']);
    const server = await rawServer(async (socket) => {
      for (const byte of text) {
        socket.write(Buffer.from([byte]));
        await sleep(1);
      }
      socket.end('56789');
    });
    const response = await get(server.url);
    expect(response.status).toBe(206);
    expect(response.headers['content-range']).toBe('bytes 5-9/10');
    const sink = new TestSink(5);
    await response.readInto(sink, () => undefined);
    expect(sink.bytes.toString()).toBe('56789');
  });

  it('pauses while the sink has nothing to lend and loses no byte', async () => {
    const body = randomBytes(4 * 1024 * 1024);
    const server = await rawServer((socket) => void socket.end(Buffer.concat([head(['HTTP/1.1 200 OK', `Content-Length: ${body.length}`]), body])));
    const response = await get(server.url);
    const sink = new TestSink(body.length, 256 * 1024);
    const seen = recorder();
    let blocks = 0;
    await response.readInto(sink, (bytes) => {
      seen.onData(bytes);
      if (seen.pieces % 3 === 0 && blocks < 10) {
        blocks++;
        sink.block(20);
      }
    });
    expect(blocks).toBe(10);
    expect(sink.waits).toBeGreaterThan(0);
    expect(sink.bytes.equals(body)).toBe(true);
    expect(seen.bytes.equals(body)).toBe(true);
    // Each of the 10 pauses copies at most two 64 KiB scratch reads (the one that found the sink
    // full, and the one already aimed at scratch when the socket resumed); so do the head's packet
    // and the first read after readInto. The other ~2.6 MiB went straight in.
    expect(response.copiedBytes).toBeLessThanOrEqual(22 * 64 * 1024);
  });

  it('reads a body without Content-Length until the server closes', async () => {
    const body = randomBytes(300_000);
    const server = await rawServer((socket) => void socket.end(Buffer.concat([head(['HTTP/1.1 200 OK']), body])));
    const response = await get(server.url);
    expect(response.contentLength).toBeUndefined();
    const sink = new TestSink(body.length);
    await response.readInto(sink, () => undefined);
    expect(sink.bytes.equals(body)).toBe(true);
  });

  it('stops at Content-Length, ignoring anything the server sends after it', async () => {
    const server = await rawServer((socket) => void socket.end(Buffer.concat([head(['HTTP/1.1 200 OK', 'Content-Length: 4']), Buffer.from('abcdEXTRA')])));
    const response = await get(server.url);
    const sink = new TestSink(100);
    await response.readInto(sink, () => undefined);
    expect(sink.bytes.toString()).toBe('abcd');
  });

  it('flags a chunked body and reads none of it', async () => {
    const server = await rawServer((socket) => void socket.end(Buffer.concat([head(['HTTP/1.1 200 OK', 'Transfer-Encoding: chunked']), Buffer.from('4\r\nabcd\r\n0\r\n\r\n')])));
    const response = await get(server.url);
    expect(response.chunked).toBe(true);
    response.destroy();
  });

  it('skips informational heads (103 Early Hints) before the answer', async () => {
    const server = await rawServer((socket) => {
      socket.write(head(['HTTP/1.1 103 Early Hints', 'Link: </x>; rel=preload']));
      socket.end(Buffer.concat([head(['HTTP/1.1 200 OK', 'Content-Length: 2']), Buffer.from('ok')]));
    });
    const response = await get(server.url);
    expect(response.status).toBe(200);
    expect(response.headers.link).toBeUndefined();
    const sink = new TestSink(2);
    await response.readInto(sink, () => undefined);
    expect(sink.bytes.toString()).toBe('ok');
  });

  it('rejects a body cut short with ERR_STREAM_PREMATURE_CLOSE, after committing what arrived', async () => {
    const body = randomBytes(100_000);
    const server = await rawServer((socket) => void socket.end(Buffer.concat([head(['HTTP/1.1 200 OK', `Content-Length: ${body.length + 1}`]), body])));
    const response = await get(server.url);
    const sink = new TestSink(body.length + 1);
    const err = await response.readInto(sink, () => undefined).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    expect(String((err as Error).message)).toContain(`${body.length} of ${body.length + 1}`);
    expect(sink.bytes.equals(body)).toBe(true);
  });

  it.each([
    ['a malformed status line', ['HTTP/9 200 OK', 'Content-Length: 1']],
    ['a header line without a colon', ['HTTP/1.1 200 OK', 'Content-Length 1']],
    ['a header name with a space', ['HTTP/1.1 200 OK', 'Content Length: 1']],
    ['a negative Content-Length', ['HTTP/1.1 200 OK', 'Content-Length: -1']],
    ['two different Content-Lengths', ['HTTP/1.1 200 OK', 'Content-Length: 1', 'Content-Length: 2']],
    ['a head over 64 KiB', ['HTTP/1.1 200 OK', ...Array.from({ length: 700 }, (_, i) => `X-Filler-${i}: ${'x'.repeat(100)}`)]],
  ])('refuses %s with source.bad_response', async (_what, lines) => {
    const server = await rawServer((socket) => void socket.end(head(lines)));
    await expect(get(server.url)).rejects.toMatchObject({ code: 'source.bad_response' });
  });

  it('accepts a Content-Length repeated with the same value', async () => {
    const server = await rawServer((socket) => void socket.end(Buffer.concat([head(['HTTP/1.1 200 OK', 'Content-Length: 2', 'Content-Length: 2']), Buffer.from('ok')])));
    const response = await get(server.url);
    expect(response.contentLength).toBe(2);
    response.destroy();
  });

  it('fails with ECONNRESET when the server closes without answering, and ECONNREFUSED when nothing listens', async () => {
    const server = await rawServer((socket) => void socket.end());
    await expect(get(server.url)).rejects.toMatchObject({ code: 'ECONNRESET' });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    await expect(get(`http://127.0.0.1:${port}/`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });

  it('fails with ETIMEDOUT when no head arrives in time', async () => {
    const server = await rawServer(() => undefined);
    const started = Date.now();
    await expect(socketGet(server.url, {}, { headTimeoutMs: 300 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('is aborted by its signal before the head and during the body', async () => {
    const silent = await rawServer(() => undefined);
    const before = new AbortController();
    setTimeout(() => before.abort(), 100);
    await expect(get(silent.url, {}, before.signal)).rejects.toMatchObject({ name: 'AbortError' });

    const trickle = await rawServer(async (socket) => {
      socket.write(head(['HTTP/1.1 200 OK', 'Content-Length: 1000000']));
      while (!socket.destroyed) {
        socket.write('x');
        await sleep(10);
      }
    });
    const during = new AbortController();
    const response = await get(trickle.url, {}, during.signal);
    setTimeout(() => during.abort(), 100);
    await expect(response.readInto(new TestSink(1_000_000), () => undefined)).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects readInto with the error given to destroy (the stall watchdog\'s)', async () => {
    const server = await rawServer((socket) => void socket.write(head(['HTTP/1.1 200 OK', 'Content-Length: 10'])));
    const response = await get(server.url);
    const reading = response.readInto(new TestSink(10), () => undefined);
    const stalled = new Error('stalled');
    setTimeout(() => response.destroy(stalled), 50);
    await expect(reading).rejects.toBe(stalled);
  });

  it('rejects readInto with the sink\'s write error and closes the connection', async () => {
    let serverSawClose!: Promise<void>;
    const server = await rawServer(async (socket) => {
      serverSawClose = new Promise((r) => socket.on('close', () => r()));
      socket.write(head(['HTTP/1.1 200 OK', 'Content-Length: 100000000']));
      while (!socket.destroyed && socket.write(Buffer.alloc(65536))) await sleep(1);
    });
    const response = await get(server.url);
    const sink = new TestSink(100_000_000);
    const diskFull = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
    const reading = response.readInto(sink, () => {
      if (sink.committed > 1_000_000) sink.failWith = diskFull;
    });
    await expect(reading).rejects.toBe(diskFull);
    await serverSawClose;
  });

  it('refuses request headers that would inject a line, before connecting', async () => {
    const server = await rawServer(() => undefined);
    await expect(get(server.url, { authorization: 'Bearer x\r\nX-Evil: 1' })).rejects.toThrow(/invalid request header/);
    await expect(get(server.url, { 'bad name': 'x' })).rejects.toThrow(/invalid request header/);
    await sleep(50);
    expect(server.connections).toBe(0);
  });

  describe('over TLS', () => {
    const body = randomBytes(8 * 1024 * 1024);
    async function httpsServer(): Promise<string> {
      const https = createHttpsServer({ cert, key }, (req, res) => {
        res.setHeader('content-length', body.length);
        res.end(body);
      });
      servers.push(https as unknown as Server);
      await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
      return `https://localhost:${(https.address() as AddressInfo).port}/file`;
    }
    const tlsGet = (url: string): Promise<SocketResponse> => socketGet(url, {}, { headTimeoutMs: 5000, tls: { ca: cert } });

    it('checks the certificate', async () => {
      await expect(get(await httpsServer())).rejects.toMatchObject({ code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    });

    it('reads straight into the sink\'s memory', async () => {
      const response = await tlsGet(await httpsServer());
      expect(response.status).toBe(200);
      const sink = new TestSink(body.length, 1024 * 1024);
      await response.readInto(sink, () => undefined);
      expect(sink.bytes.equals(body)).toBe(true);
      expect(response.copiedBytes).toBeLessThan(body.length / 8);
    });

    // TLS keeps handing over records it has already decrypted after the read callback asked to
    // pause: none of them may be lost or reordered, before readInto or while the sink is full.
    it('loses no record that arrives after a pause, before readInto or while the sink is full', async () => {
      const response = await tlsGet(await httpsServer());
      await sleep(50); // as a download does while it opens the .part file
      const sink = new TestSink(body.length, 256 * 1024);
      const seen = recorder();
      let blocks = 0;
      await response.readInto(sink, (bytes) => {
        seen.onData(bytes);
        if (seen.pieces % 7 === 0 && blocks < 20) {
          blocks++;
          sink.block(5);
        }
      });
      expect(blocks).toBe(20);
      expect(sink.bytes.equals(body)).toBe(true);
      expect(seen.bytes.equals(body)).toBe(true);
    });
  });

  it('rejects readInto after destroy() without an error, even for a body framed by the connection\'s end', async () => {
    const server = await rawServer((socket) => void socket.end(Buffer.concat([head(['HTTP/1.1 200 OK']), Buffer.from('partial')])));
    const response = await get(server.url);
    response.destroy();
    await expect(response.readInto(new TestSink(100), () => undefined)).rejects.toMatchObject({ code: 'ERR_STREAM_DESTROYED' });
  });
});
