import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/** Parses proc(5) mountinfo: `id parent maj:min root mountpoint opts [optional...] - fstype source superopts`. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (dash === -1 || fields.length < dash + 3) continue;
    out.push({ mountPoint: unescape(fields[4]), fsType: fields[dash + 1], source: unescape(fields[dash + 2]) });
  }
  return out;
}

/**
 * The mount at exactly `dir` (the last one wins, as the kernel stacks them), or undefined.
 * Read from /proc/self/mountinfo rather than `mount` or `findmnt` output, which differ by distro.
 */
export async function findMount(dir: string, mountInfoFile = '/proc/self/mountinfo'): Promise<MountEntry | undefined> {
  const target = resolve(dir);
  const mounts = parseMountInfo(await readFile(mountInfoFile, 'utf8'));
  return mounts.filter((m) => m.mountPoint === target).at(-1);
}
