// Progress bars and colours are ANSI CSI sequences (e.g. FLM's `\033[K`, erase line); strip any.
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

/**
 * Splits a child process's output into lines. A carriage return ends a line just like a
 * newline, because progress bars (FLM's among them) rewrite their line with `\r`. Lines
 * are stripped of ANSI sequences and surrounding blanks; empty lines are dropped.
 */
export class LineSplitter {
  private rest = '';

  constructor(private readonly onLine: (line: string) => void) {}

  push(chunk: string | Buffer): void {
    const parts = (this.rest + chunk.toString()).split(/[\r\n]/);
    this.rest = parts.pop() ?? '';
    // A child that never ends a line must not grow this buffer without bound.
    if (this.rest.length > 64 * 1024) this.rest = this.rest.slice(-64 * 1024);
    for (const part of parts) this.emit(part);
  }

  /** The stream has ended: whatever is left is a last line without a terminator. */
  end(): void {
    const last = this.rest;
    this.rest = '';
    this.emit(last);
  }

  private emit(raw: string): void {
    const line = raw.replace(ANSI, '').trim();
    if (line) this.onLine(line);
  }
}
