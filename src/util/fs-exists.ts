import { lstat, stat } from 'node:fs/promises';

/** Whether something is at `path` (following links; `{ link: true }` looks at the link itself). */
export async function pathExists(path: string, opts: { link?: boolean } = {}): Promise<boolean> {
  return (opts.link ? lstat(path) : stat(path)).then(
    () => true,
    () => false,
  );
}
