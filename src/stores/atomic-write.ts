import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** Temp files are named `<file>.<random>.tmp` so a later writer can find and remove leftovers. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * Replace `path` with `data` so that a reader (or a crash) sees either the old file or
 * the new one, never a mix: write a temp file beside it, fsync, rename over, fsync the
 * directory so the rename itself survives a power cut.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array | Uint8Array[], mode = 0o644): Promise<void> {
  const tmp = tempPathFor(path);
  let renamed = false;
  try {
    const handle = await open(tmp, 'wx', mode);
    try {
      if (Array.isArray(data)) await writeAllv(handle, data);
      else await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    renamed = true;
    await fsyncDirectory(dirname(path));
  } finally {
    if (!renamed) await rm(tmp, { force: true });
  }
}

export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes many buffers with few syscalls; writev may stop short, so carry on from where it did. */
async function writeAllv(handle: import('node:fs/promises').FileHandle, buffers: Uint8Array[]): Promise<void> {
  const IOV_MAX = 1024;
  for (let i = 0; i < buffers.length; i += IOV_MAX) {
    const batch = buffers.slice(i, i + IOV_MAX);
    const total = batch.reduce((n, b) => n + b.byteLength, 0);
    let written = (await handle.writev(batch)).bytesWritten;
    if (written === total) continue;
    const rest = Buffer.concat(batch);
    while (written < total) written += (await handle.write(rest, written, total - written)).bytesWritten;
  }
}
