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
  headers: Record<string, string> = Object.create(null);
  /** From Content-Length; undefined when the body runs until the server closes. */
  contentLength: number | undefined;
  /** The body is chunked, which this reader leaves to node's client: nothing of it was read. */
  chunked = false;
  /** Body bytes that had to be copied into the sink (read before readInto, or while it had no memory to lend) rather than read straight into it. */
  copiedBytes = 0;

  private readonly socket: Socket;
  /** The response head, and body bytes read while the sink had no memory to lend. */
  private readonly scratch = Buffer.allocUnsafe(HEAD_MAX);
  private phase: Phase = 'head';
  private headBytes = 0;
  private headTimer: NodeJS.Timeout | undefined;
  private sink: ByteSink | undefined;
  private onData: ((bytes: Buffer) => void) | undefined;
  /** What the sink lent for the read in progress. */
  private lent: Buffer | undefined;
  /** Body bytes received but not yet in the sink, in order (copies: `scratch` is read into again). */
  private queue: Buffer[] = [];
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
      if (this.queue.length > 0) void this.drain();
      else this.continueOrFinish();
    });
  }

  /** Stops reading and closes the connection; a readInto in progress rejects with `err`. */
  destroy(err: Error = withCode(new Error('the response was closed before its body was read'), 'ERR_STREAM_DESTROYED')): void {
    this.error ??= err;
    this.socket.destroy();
  }

  /**
   * Where the next read goes: while reading the body, the sink's own memory whenever it has some
   * and nothing is queued before it.
   */
  private nextBuffer(): Buffer {
    if (this.phase === 'head') return this.scratch.subarray(this.headBytes);
    try {
      this.lent = this.phase === 'body' && this.queue.length === 0 ? this.sink!.lend() : undefined;
    } catch (err) {
      this.lent = undefined;
      this.destroy(err as Error);
    }
    return this.lent?.length ? this.lent : this.scratch;
  }

  /**
   * The socket's onread callback; answering false pauses the socket. It must not throw (it is
   * called from the event loop), and over TLS it can be called again after answering false
   * (records already decrypted keep coming), so no bytes may be dropped whatever the phase.
   */
  private onRead(n: number, buf: Buffer): boolean {
    try {
      return this.phase === 'head' ? this.readHead(n) : this.readBody(buf.subarray(0, n), buf === this.lent);
    } catch (err) {
      this.destroy(err as Error);
      return false;
    }
  }

  private readBody(read: Buffer, inLentMemory: boolean): boolean {
    if (this.phase === 'done' || this.chunked) return false;
    const bytes = this.contentLength === undefined ? read : read.subarray(0, this.contentLength - this.received);
    if (bytes.length === 0) return false; // past Content-Length
    this.received += bytes.length;
    if (this.phase === 'body' && this.queue.length === 0 && inLentMemory) {
      this.deliver(bytes); // the common case: the socket read straight into the sink
      return this.readOn();
    }
    this.copiedBytes += bytes.length;
    if (this.phase === 'body' && this.queue.length === 0) {
      // Read into scratch while the sink was full: put in what fits now, keep a copy of the rest.
      this.queue.push(bytes);
      if (!this.moveQueued()) this.queue[0] = Buffer.from(this.queue[0]);
    } else {
      this.queue.push(Buffer.from(bytes)); // not reading yet, or behind bytes already queued
    }
    if (this.queue.length > 0) {
      if (this.phase === 'body') void this.drain();
      return false;
    }
    return this.readOn();
  }

  /** After a read: read on, or settle readInto once the body is whole. */
  private readOn(): boolean {
    if (!this.complete()) return true;
    this.finish();
    return false;
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
      clearTimeout(this.headTimer);
      this.phase = 'waiting';
      if (rest.length > 0) this.readBody(rest, false); // body bytes that came with the head
      this.headIn(this);
      return false; // wait for readInto (or destroy)
    }
  }

  private deliver(bytes: Buffer): void {
    this.onData!(bytes);
    this.sink!.commit(bytes.length);
  }

  /** Moves queued bytes into the sink as far as it has memory to lend; true when the queue is empty. */
  private moveQueued(): boolean {
    while (this.queue.length > 0) {
      const into = this.sink!.lend();
      if (!into?.length) return false;
      const head = this.queue[0];
      const n = head.copy(into);
      this.deliver(into.subarray(0, n));
      if (n === head.length) this.queue.shift();
      else this.queue[0] = head.subarray(n);
    }
    return true;
  }

  /** Empties the queue into the sink as memory frees up, then reads on; the socket stays paused meanwhile. One runs at a time. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      // Called from the read callback, which pauses the socket after it returns: resume only after that.
      await Promise.resolve();
      while (!this.moveQueued()) await this.sink!.writable();
    } catch (err) {
      this.error ??= err as Error;
      this.draining = false;
      this.finish();
      return;
    }
    this.draining = false;
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
  const headers: Record<string, string> = Object.create(null);
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
