/** Formatting for the dashboard: sizes in binary units (what `ls -h` and the Hub's sizes mean), ETAs. */

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** `1536` -> `1.50 KiB`; three significant digits; `—` for unknown. */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return '—';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  // 1023.9 KiB would print as "1024 KiB" after rounding: move up a unit instead.
  if (Number(value.toFixed(digitsFor(value))) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(digitsFor(value))} ${UNITS[unit]}`;
}

function digitsFor(value: number): number {
  return value >= 100 ? 0 : value >= 10 ? 1 : 2;
}

/** Bytes per second as `12.3 MiB/s`; `—` when nothing is moving. */
export function formatRate(bytesPerSecond: number | null | undefined): string {
  if (!bytesPerSecond || bytesPerSecond <= 0 || !Number.isFinite(bytesPerSecond)) return '—';
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Seconds left as `45 s`, `3 min 05 s`, `2 h 07 min`, `1 d 4 h`; `—` when unknown. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${pad(s % 60)} s`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${pad(Math.floor((s % 3600) / 60))} min`;
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`;
}

/** Seconds left at the current rate, or null when there is no rate or no total yet. */
export function etaSeconds(total: number, done: number, bytesPerSecond: number): number | null {
  if (!(total > 0) || !(bytesPerSecond > 0)) return null;
  return Math.max(0, (total - done) / bytesPerSecond);
}

/** `done` of `total` as a whole percentage, clamped to 0-100; 0 without a total. */
export function percent(done: number, total: number): number {
  if (!(total > 0)) return 0;
  return Math.min(100, Math.max(0, Math.floor((done / total) * 100)));
}

/** A moment (epoch ms or ISO text) as `2026-11-23 14:05` in the viewer's zone; `—` when absent or unreadable. */
export function formatTime(at: number | string | null | undefined): string {
  if (at === null || at === undefined || at === '') return '—';
  const date = new Date(at);
  if (Number.isNaN(date.getTime())) return '—';
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** A duration in seconds as a short age: `12 s`, `4 min`, `3 h`, `2 d`. */
export function formatAge(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)} h`;
  return `${Math.floor(seconds / 86_400)} d`;
}

/** A 40-hex commit or 64-hex digest shortened for a table cell (the full value stays in the details). */
export function shortHash(hash: string | null | undefined, length = 12): string {
  if (!hash) return '—';
  return hash.length > length ? hash.slice(0, length) : hash;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}
