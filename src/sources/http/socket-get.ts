import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { FerryError } from '../../errors/ferry-error.js';
import type { ByteSink } from '../../util/byte-sink.js';

/** A response head bigger than this is refused (node's own client allows 16 KiB). */
const HEAD_MAX = 64 * 1024;

export interface SocketGetOptions {
  signal?: AbortSignal;
  /** No complete response head within this long (connecting included): fail with ETIMEDOUT. */
  headTimeoutMs: number;
  /** Extra TLS settings (the tests trust their own CA this way). */
  tls?: Pick<ConnectionOptions, 'ca'>;
}

type Phase = 'head' | 'waiting' | 'body' | 'done';

/**
 * A GET spoken on a socket of our own, so that the body is read straight into the caller's
 * memory (a ByteSink: for a download, the O_DIRECT staging buffers).
 *
 * Why not node's http client: it copies every piece of a body into a freshly allocated Buffer.
 * On a 2 GiB download here that cost 3.4-4.5 s of CPU against 1.5 s reading into our own
 * memory (most of what is left is SHA-256), and the kernel's share fell from 1-2 s to 0.2 s:
 * glibc kept trimming and re-faulting the memory of those allocations.
 *
 * It speaks just enough HTTP/1.1 for one GET with `Connection: close`: a status line, headers
 * (informational 1xx heads are skipped), and a body framed by Content-Length or by the end of
 * the connection. A chunked body is not read: `chunked` is set and the caller asks again with
 * node's client. Works the same over TLS (`tls.connect` takes the same `onread`).
 */
export function socketGet(url: string, headers: Record<string, string>, opts: SocketGetOptions): Promise<SocketResponse> {
  return new Promise((resolve, reject) => {
    try {
      new SocketResponse(new URL(url), headers, opts, resolve, reject);
    } catch (err) {
      reject(err);
    }
  });
}

export class SocketResponse {
  status = 0;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string> = {};
  /** From Content-Length; undefined when the body runs until the server closes. */
  contentLength: number | undefined;
  /** The body is chunked, which this reader leaves to node's client: nothing of it was read. */
  chunked = false;

  private readonly socket: Socket;
  /** The response head, and any body bytes that arrive while the sink has no memory to lend. */
  private readonly scratch = Buffer.allocUnsafe(HEAD_MAX);
  private phase: Phase = 'head';
  private headBytes = 0;
  private headTimer: NodeJS.Timeout | undefined;
  private sink: ByteSink | undefined;
  private onData: ((bytes: Buffer) => void) | undefined;
  /** What the sink lent for the read in progress. */
  private lent: Buffer | undefined;
  /** Body bytes read into `scratch` (they came with the head, or the sink had nothing to lend), still to be put in the sink. */
  private pending: Buffer | undefined;
  private draining = false;
  private received = 0;
  private closed = false;
  private error: Error | undefined;
  private bodyDone: { resolve: () => void; reject: (err: Error) => void } | undefined;

  /** @internal use socketGet */
  constructor(
    url: URL,
    headers: Record<string, string>,
    private readonly opts: SocketGetOptions,
    private readonly headIn: (response: SocketResponse) => void,
    private readonly headFailed: (err: Error) => void,
  ) {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FerryError('source.bad_response', `cannot download from a ${url.protocol} URL`);
    opts.signal?.throwIfAborted();
    const request = requestHead(url, headers);
    const host = url.hostname.replace(/^\[|\]$/g, ''); // IPv6 literals come bracketed
    const onread = { buffer: () => this.nextBuffer(), callback: (n: number, buf: Uint8Array) => this.onRead(n, buf as Buffer) };
    this.socket = url.protocol === 'https:'
      ? // tls.connect documents `onread` (it is net's), though @types/node leaves it out.
        tlsConnect({ host, port: Number(url.port) || 443, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], onread, ...opts.tls } as ConnectionOptions)
      : netConnect({ host, port: Number(url.port) || 80, onread });
    this.socket.on('error', (err) => void (this.error ??= err));
    this.socket.on('close', () => this.onClose());
    this.socket.write(request);
    this.headTimer = setTimeout(() => this.destroy(withCode(new Error(`no response within ${opts.headTimeoutMs / 1000} s`), 'ETIMEDOUT')), opts.headTimeoutMs);
    opts.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /**
   * Reads the body to its end into `sink`; `onData` sees each piece first, in order (the
   * downloader hashes there). Rejects if the connection fails or closes before Content-Length
   * bytes arrived; what arrived until then has been committed to the sink.
   */
  readInto(sink: ByteSink, onData: (bytes: Buffer) => void): Promise<void> {
    if (this.phase !== 'waiting') return Promise.reject(new Error('the body can be read once, after the head'));
    this.sink = sink;
    this.onData = onData;
    this.phase = 'body';
    return new Promise((resolve, reject) => {
      this.bodyDone = { resolve, reject };
      if (this.pending) void this.drainPending();
      else this.continueOrFinish();
    });
  }

  /** Stops reading and closes the connection; a readInto in progress rejects with `err`. */
  destroy(err?: Error): void {
    this.error ??= err;
    this.socket.destroy();
  }

  /** Where the next read goes: while reading the body, the sink's own memory whenever it has some. */
  private nextBuffer(): Buffer {
    if (this.phase === 'head') return this.scratch.subarray(this.headBytes);
    this.lent = this.phase === 'body' && !this.pending ? this.sink!.lend() : undefined;
    return this.lent?.length ? this.lent : this.scratch;
  }

  /** The socket's onread callback; answering false pauses the socket. It must not throw: it is called from the event loop. */
  private onRead(n: number, buf: Buffer): boolean {
    try {
      return this.phase === 'head' ? this.readHead(n) : this.readBody(n, buf);
    } catch (err) {
      this.destroy(err as Error);
      return false;
    }
  }

  private readBody(n: number, buf: Buffer): boolean {
    if (this.phase !== 'body') return false;
    const take = this.contentLength === undefined ? n : Math.min(n, this.contentLength - this.received);
    this.received += take;
    if (buf === this.lent) {
      this.deliver(buf.subarray(0, take));
    } else {
      this.pending = buf.subarray(0, take);
      void this.drainPending();
      return false;
    }
    if (this.complete()) {
      this.finish();
      return false;
    }
    return true;
  }

  private readHead(n: number): boolean {
    let searchFrom = Math.max(0, this.headBytes - 3);
    this.headBytes += n;
    for (;;) {
      const end = this.scratch.subarray(0, this.headBytes).indexOf('\r\n\r\n', searchFrom, 'latin1');
      if (end < 0) {
        if (this.headBytes === HEAD_MAX) this.destroy(this.badResponse(`a response head over ${HEAD_MAX / 1024} KiB`));
        return true;
      }
      const head = parseHead(this.scratch.toString('latin1', 0, end), this.socket.remoteAddress);
      const rest = this.scratch.subarray(end + 4, this.headBytes);
      if (head.status >= 100 && head.status < 200) {
        // 100 Continue, 103 Early Hints: another head follows.
        rest.copy(this.scratch, 0);
        this.headBytes = rest.length;
        searchFrom = 0;
        continue;
      }
      this.status = head.status;
      this.headers = head.headers;
      this.chunked = head.headers['transfer-encoding'] !== undefined;
      this.contentLength = head.contentLength;
      if (rest.length > 0 && !this.chunked) {
        this.pending = Buffer.from(rest.subarray(0, this.contentLength === undefined ? rest.length : Math.min(rest.length, this.contentLength)));
        this.received = this.pending.length;
      }
      clearTimeout(this.headTimer);
      this.phase = 'waiting';
      this.headIn(this);
      return false; // wait for readInto (or destroy)
    }
  }

  private deliver(bytes: Buffer): void {
    this.onData!(bytes);
    this.sink!.commit(bytes.length);
  }

  /** Puts `pending` into the sink as memory frees up; the socket stays paused meanwhile. */
  private async drainPending(): Promise<void> {
    this.draining = true;
    try {
      // Called from the read callback, which pauses the socket after it returns: resume only after that.
      await Promise.resolve();
      while (this.pending!.length > 0) {
        const into = this.sink!.lend();
        if (!into?.length) {
          await this.sink!.writable();
          continue;
        }
        const n = this.pending!.copy(into);
        this.deliver(into.subarray(0, n));
        this.pending = this.pending!.subarray(n);
      }
      this.pending = undefined;
    } catch (err) {
      this.error ??= err as Error;
      this.finish();
      return;
    } finally {
      this.draining = false;
    }
    this.continueOrFinish();
  }

  private continueOrFinish(): void {
    if (this.complete() || this.closed) this.finish();
    else this.socket.resume();
  }

  private complete(): boolean {
    return this.contentLength !== undefined && this.received >= this.contentLength;
  }

  /** Settles readInto: with the body whole, with the first error, or as cut short. */
  private finish(): void {
    if (this.phase === 'done') return;
    this.phase = 'done';
    this.socket.destroy();
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    if (this.complete() || (this.contentLength === undefined && this.closed && !this.error)) this.bodyDone?.resolve();
    else this.bodyDone?.reject(this.error ?? withCode(new Error(`the connection closed after ${this.received} of ${this.contentLength} body bytes`), 'ERR_STREAM_PREMATURE_CLOSE'));
  }

  private onClose(): void {
    this.closed = true;
    clearTimeout(this.headTimer);
    this.opts.signal?.removeEventListener('abort', this.onAbort);
    if (this.phase === 'head') {
      this.phase = 'done';
      this.headFailed(this.error ?? withCode(new Error('the server closed the connection without answering'), 'ECONNRESET'));
    } else if (this.phase === 'body' && !this.draining) {
      this.finish();
    }
    // 'waiting': readInto finds the connection closed; 'done': already settled.
  }

  private readonly onAbort = () => this.destroy(Object.assign(new Error('the request was aborted'), { name: 'AbortError', code: 'ABORT_ERR' }));

  private badResponse(what: string): FerryError {
    return new FerryError('source.bad_response', `the server at ${this.socket.remoteAddress ?? 'the other end'} sent ${what}`);
  }
}

/** The request: our headers, checked so that none can smuggle in a line of its own. */
function requestHead(url: URL, headers: Record<string, string>): string {
  const lines = [`GET ${url.pathname}${url.search} HTTP/1.1`, `Host: ${url.host}`];
  for (const [name, value] of Object.entries(headers)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name) || /[\r\n\0]/.test(value)) throw new TypeError(`invalid request header ${JSON.stringify(name)}`);
    lines.push(`${name}: ${value}`);
  }
  lines.push('Connection: close', '', '');
  return lines.join('\r\n');
}

interface Head {
  status: number;
  headers: Record<string, string>;
  contentLength: number | undefined;
}

/** Parses a status line and header lines; anything malformed is refused rather than guessed at. */
function parseHead(text: string, from: string | undefined): Head {
  const bad = (what: string) => new FerryError('source.bad_response', `the server at ${from ?? 'the other end'} sent ${what}`);
  const lines = text.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] ([1-5]\d\d)(?: |$)/.exec(lines[0]);
  if (!statusLine) throw bad('a malformed status line');
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    if (colon <= 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name)) throw bad('a malformed header line');
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  let contentLength: number | undefined;
  if (headers['content-length'] !== undefined) {
    const values = new Set(headers['content-length'].split(',').map((v) => v.trim()));
    const [only] = values;
    if (values.size !== 1 || !/^\d{1,15}$/.test(only)) throw bad(`an invalid Content-Length (${headers['content-length'].slice(0, 40)})`);
    contentLength = Number(only);
  }
  return { status: Number(statusLine[1]), headers, contentLength };
}

function withCode(err: Error, code: string): Error {
  return Object.assign(err, { code });
}
