/**
 * Server-Sent Events over fetch rather than EventSource: EventSource cannot send an
 * Authorization header, and the API token must never go into a URL. The parser follows the
 * WHATWG event-stream rules (fields, multi-line data, comments, CR/LF/CRLF line ends, chunks cut
 * anywhere); `followSse` reconnects with exponential backoff until the stream says it is done.
 */

export interface SseEvent {
  /** `message` when the server named none. */
  event: string;
  data: string;
  id?: string;
}

/** Incremental parser: feed it decoded text as it arrives; it calls `onEvent` per complete event. */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined;

  constructor(private readonly onEvent: (event: SseEvent) => void) {}

  push(text: string): void {
    this.buffer += text;
    for (;;) {
      const end = /\r\n|\n|\r/.exec(this.buffer);
      if (!end) return;
      // A CR at the very end may be the first half of a CRLF still on its way.
      if (end[0] === '\r' && end.index === this.buffer.length - 1) return;
      const line = this.buffer.slice(0, end.index);
      this.buffer = this.buffer.slice(end.index + end[0].length);
      this.line(line);
    }
  }

  /** The stream ended: a CR held back as a possible half of a CRLF was a line end after all. */
  end(): void {
    if (this.buffer.endsWith('\r')) {
      this.buffer = this.buffer.slice(0, -1);
      const line = this.buffer;
      this.buffer = '';
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') return this.dispatch();
    if (line.startsWith(':')) return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
    // `retry` and unknown fields are ignored: the backoff is ours.
  }

  private dispatch(): void {
    if (this.data.length > 0) {
      this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), ...(this.id !== undefined ? { id: this.id } : {}) });
    }
    this.data = [];
    this.event = '';
  }
}

/** Delay before reconnect attempt `attempt` (0-based): initial, doubling, capped. */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
}

/** An error that reconnecting cannot fix: a 4xx other than 408 and 429 (unknown pull, bad id, refused token). */
export function isPermanent(err: unknown): boolean {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === 'number' && status >= 400 && status < 500 && status !== 408 && status !== 429;
}

export class SseHttpError extends Error {
  constructor(readonly status: number) {
    super(`event stream answered HTTP ${status}`);
  }
}

export interface FollowOptions {
  /** Opens the stream; may throw (an error with a `status` of 4xx stops the retries). */
  connect: (signal: AbortSignal) => Promise<Response>;
  onEvent: (event: SseEvent) => void;
  /** True once the stream is over for good (e.g. an `end` event came): no reconnect then. */
  isDone: () => boolean;
  /** Told before each wait: the error (if any) and how long until the next attempt. */
  onRetry?: (delayMs: number, err: unknown) => void;
  signal: AbortSignal;
  /** @defaultValue 500 */
  initialDelayMs?: number;
  /** @defaultValue 10000 */
  maxDelayMs?: number;
  /** Give up after this many attempts in a row without an event. @defaultValue Infinity */
  maxAttempts?: number;
}

/**
 * Reads the stream until `isDone()`; a dropped connection, a 5xx or a network error is retried
 * after a backoff that starts again from `initialDelayMs` once an event arrives.
 */
export async function followSse(opts: FollowOptions): Promise<void> {
  const initial = opts.initialDelayMs ?? 500;
  const max = opts.maxDelayMs ?? 10_000;
  const maxAttempts = opts.maxAttempts ?? Infinity;
  let failures = 0;
  while (!opts.signal.aborted) {
    let error: unknown;
    try {
      const res = await opts.connect(opts.signal);
      if (!res.ok || !res.body) throw new SseHttpError(res.status);
      const parser = new SseParser((event) => {
        failures = 0;
        opts.onEvent(event);
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) {
            parser.end();
            break;
          }
          parser.push(value);
        }
      } finally {
        reader.releaseLock();
      }
    } catch (err) {
      if (opts.signal.aborted) return;
      if (isPermanent(err)) throw err;
      error = err;
    }
    if (opts.isDone() || opts.signal.aborted) return;
    if (++failures > maxAttempts) throw error ?? new Error('event stream kept closing');
    const delay = backoffDelay(failures - 1, initial, max);
    opts.onRetry?.(delay, error);
    await sleep(delay, opts.signal);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
