/** What a line of `flm pull` output means to Ferry; lines that mean nothing are `other`. */
export type FlmPullEvent =
  | { kind: 'name'; name: string }
  | { kind: 'file'; index: number; count: number; file: string }
  | { kind: 'progress'; percent: number; doneBytes: number; totalBytes: number }
  | { kind: 'already' }
  | { kind: 'success' }
  | { kind: 'error'; message: string }
  | { kind: 'other'; text: string };

const MiB = 1024 * 1024;
const FILE_LINE = /^\[FLM\]\s+Downloading\s+(\d+)\/(\d+):\s*(.+)$/;
const PROGRESS_LINE = /^\[FLM\]\s+Downloading:\s*([\d.]+)%\s*\(\s*([\d.]+)\s*MB\s*\/\s*([\d.]+)\s*MB\s*\)/;
const NAME_LINE = /^\[FLM\]\s+Name:\s*(.+)$/;

/** Classifies one line, already split on \r and \n and stripped of ANSI by LineSplitter. */
export function parseFlmPullLine(line: string): FlmPullEvent {
  const text = line.trim();
  let m = PROGRESS_LINE.exec(text);
  if (m) {
    // FLM prints MB as bytes / 1024^2 with one decimal, so each value is within 0.05 MiB.
    return { kind: 'progress', percent: Number(m[1]), doneBytes: Math.round(Number(m[2]) * MiB), totalBytes: Math.round(Number(m[3]) * MiB) };
  }
  if ((m = FILE_LINE.exec(text))) return { kind: 'file', index: Number(m[1]), count: Number(m[2]), file: m[3].trim() };
  if ((m = NAME_LINE.exec(text))) return { kind: 'name', name: m[1].trim() };
  if (/^\[ERROR\]/.test(text)) return { kind: 'error', message: text.replace(/^\[ERROR\]\s*/, '') };
  if (/^\[FLM\]\s+Model is already downloaded/.test(text)) return { kind: 'already' };
  if (/^\[FLM\]\s+Model downloaded successfully/.test(text)) return { kind: 'success' };
  return { kind: 'other', text };
}

export interface FlmPullSnapshot {
  bytesDone: number;
  bytesTotal: number;
  file?: string;
  fileIndex: number;
  fileCount: number;
}

/**
 * Whole-model progress from two imperfect sources. FLM's percentage restarts for each file, so
 * the parsed count is the finished files' totals plus the current file's bytes; it misses
 * files that were already on disk. The model directory's size on disk includes those but lags
 * and may count partial files. The reported value is the larger of the two, never below what
 * was already reported and never above the total.
 */
export class FlmProgressTracker {
  private completedBytes = 0;
  private currentDone = 0;
  private currentTotal = 0;
  private currentIndex = 0;
  private fileCount = 0;
  private file?: string;
  private diskBytes = 0;
  private reported = 0;

  constructor(private readonly bytesTotal: number) {}

  onEvent(event: FlmPullEvent): void {
    if (event.kind === 'file') {
      if (event.index !== this.currentIndex) {
        this.completedBytes += this.currentTotal;
        this.currentDone = 0;
        this.currentTotal = 0;
      }
      this.currentIndex = event.index;
      this.fileCount = event.count;
      this.file = event.file;
    } else if (event.kind === 'progress') {
      this.currentDone = event.doneBytes;
      this.currentTotal = Math.max(this.currentTotal, event.totalBytes);
    }
  }

  onDiskSize(bytes: number): void {
    this.diskBytes = bytes;
  }

  /** The model is complete (FLM said so): progress is the total. */
  finish(): void {
    this.reported = Math.max(this.reported, this.bytesTotal);
  }

  snapshot(): FlmPullSnapshot {
    const parsed = this.completedBytes + this.currentDone;
    let value = Math.max(this.reported, parsed, this.diskBytes);
    if (this.bytesTotal > 0) value = Math.min(value, this.bytesTotal);
    this.reported = value;
    return { bytesDone: value, bytesTotal: this.bytesTotal, file: this.file, fileIndex: this.currentIndex, fileCount: this.fileCount };
  }
}
