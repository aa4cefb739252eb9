import { describe, expect, it } from 'vitest';
import { etaSeconds, formatAge, formatBytes, formatEta, formatRate, formatTime, percent, shortHash } from '../../web/src/format.js';

describe('dashboard formatting', () => {
  it('prints sizes in binary units with three significant digits', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.00 KiB');
    expect(formatBytes(1536)).toBe('1.50 KiB');
    expect(formatBytes(12 * 1024 * 1024)).toBe('12.0 MiB');
    expect(formatBytes(491_400_032)).toBe('469 MiB');
    expect(formatBytes(40 * 1024 ** 3)).toBe('40.0 GiB');
    // Just under a unit rounds up into the next one rather than printing "1024 KiB".
    expect(formatBytes(1024 * 1024 - 1)).toBe('1.00 MiB');
    expect(formatBytes(1024 ** 6)).toBe('1024 PiB');
  });

  it('prints a dash for unknown or impossible sizes and rates', () => {
    for (const v of [undefined, null, -1, Number.NaN, Infinity]) expect(formatBytes(v)).toBe('—');
    expect(formatRate(0)).toBe('—');
    expect(formatRate(null)).toBe('—');
    expect(formatRate(3 * 1024 * 1024)).toBe('3.00 MiB/s');
  });

  it('prints ETAs in seconds, minutes, hours and days', () => {
    expect(formatEta(0)).toBe('0 s');
    expect(formatEta(44.6)).toBe('45 s');
    expect(formatEta(59.4)).toBe('59 s');
    expect(formatEta(60)).toBe('1 min 00 s');
    expect(formatEta(185)).toBe('3 min 05 s');
    expect(formatEta(2 * 3600 + 7 * 60 + 30)).toBe('2 h 07 min');
    expect(formatEta(86_400 + 4 * 3600)).toBe('1 d 4 h');
    for (const v of [null, undefined, -5, Number.NaN, Infinity]) expect(formatEta(v)).toBe('—');
  });

  it('derives the ETA and percentage from bytes and rate, and has none without a rate or total', () => {
    expect(etaSeconds(100, 40, 20)).toBe(3);
    expect(etaSeconds(100, 120, 20)).toBe(0);
    expect(etaSeconds(100, 40, 0)).toBeNull();
    expect(etaSeconds(0, 0, 10)).toBeNull();
    expect(percent(1, 3)).toBe(33);
    expect(percent(5, 0)).toBe(0);
    expect(percent(7, 5)).toBe(100);
  });

  it('prints times in the local zone, ages, and short hashes', () => {
    const at = new Date(2026, 10, 23, 14, 5).getTime();
    expect(formatTime(at)).toBe('2026-11-23 14:05');
    expect(formatTime(new Date(at).toISOString())).toBe('2026-11-23 14:05');
    expect(formatTime('not a date')).toBe('—');
    expect(formatTime(null)).toBe('—');
    expect(formatAge(12)).toBe('12 s');
    expect(formatAge(4 * 60 + 59)).toBe('4 min');
    expect(formatAge(3 * 3600)).toBe('3 h');
    expect(formatAge(2 * 86_400)).toBe('2 d');
    expect(shortHash('428e97f4a26778f38bac8fa9ab6f8fd8d3da3bd2', 10)).toBe('428e97f4a2');
    expect(shortHash(undefined)).toBe('—');
  });
});
