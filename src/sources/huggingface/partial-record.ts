import { readFile, rename, writeFile } from 'node:fs/promises';
import type { DownloadTarget } from './download-file.js';

/**
 * The resume record beside a partial file (`<part>.json`): which file at which commit the bytes
 * belong to, and, for a file fetched in parallel parts, which byte ranges are on disk. A single
 * stream's partial has no ranges: its bytes are the file's first `size` bytes.
 */
export interface PartialRecord {
  repo: string;
  revision: string;
  path: string;
  size?: number;
  sha256?: string;
  /** `[start, end)` ranges written to disk, sorted, not overlapping (parallel downloads only). */
  written?: Array<[number, number]>;
}

export function recordOf(t: DownloadTarget, written?: Array<[number, number]>): PartialRecord {
  return { repo: t.repo, revision: t.revision, path: t.path, size: t.size, sha256: t.sha256 ?? t.gitSha1, ...(written ? { written } : {}) };
}

export async function readPartialRecord(recordPath: string): Promise<PartialRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(recordPath, 'utf8')) as PartialRecord;
    return record && typeof record === 'object' ? record : undefined;
  } catch {
    return undefined;
  }
}

/** The partial holds bytes of this very file (same repo, commit, path, size and digest). */
export function sameFile(record: PartialRecord | undefined, target: DownloadTarget): boolean {
  if (!record) return false;
  const want = recordOf(target);
  return record.repo === want.repo && record.revision === want.revision && record.path === want.path && record.size === want.size && record.sha256 === want.sha256;
}

/**
 * Written ranges a record may claim: well-formed, sorted, within the file. Anything else (a
 * hand-edited or torn record) is worth nothing: the ranges are refetched.
 */
export function validRanges(record: PartialRecord, size: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let last = 0;
  for (const range of Array.isArray(record.written) ? record.written : []) {
    if (!Array.isArray(range) || range.length !== 2) return [];
    const [start, end] = range;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < last || end <= start || end > size) return [];
    out.push([start, end]);
    last = end;
  }
  return out;
}

/** Replaces the record whole (write and rename), so a kill never leaves half a record. */
export async function writePartialRecord(recordPath: string, record: PartialRecord): Promise<void> {
  const tmp = `${recordPath}.tmp`;
  await writeFile(tmp, JSON.stringify(record));
  await rename(tmp, recordPath);
}
