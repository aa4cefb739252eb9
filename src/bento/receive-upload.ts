import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { FerryError } from '../errors/ferry-error.js';
import { diskFullError, freeBytes, isDiskFull } from '../stores/disk-space.js';
import { TEMP_PREFIX } from './bento-store.js';

/**
 * Streams an uploaded archive into a temporary file in `dir` (the registry root, so the
 * extraction beside it is on the same disk), never holding more than a stream's buffers in
 * memory. A declared length beyond the free space is refused before a byte is written; a disk
 * that fills during the upload is `model.insufficient_disk` (507). The name starts with the
 * registry's temp prefix, so one left by a killed process is swept like its temp directories.
 * The caller removes the file.
 */
export async function receiveUpload(source: Readable, dir: string, opts: { declaredBytes?: number; maxBytes: number }): Promise<string> {
  if (opts.declaredBytes !== undefined) {
    const free = await freeBytes(dir);
    if (opts.declaredBytes > free) throw diskFullError(dir, `the upload is ${opts.declaredBytes} bytes, ${free} free`);
  }
  const path = join(dir, `${TEMP_PREFIX}upload-${randomBytes(8).toString('hex')}.part`);
  let received = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      if (received > opts.maxBytes) return done(new FerryError('bento.archive_too_large', `the upload is over ${opts.maxBytes} bytes`, { hint: 'raise archive_max_bytes in config.toml' }));
      done(null, chunk);
    },
  });
  try {
    await pipeline(source, counter, createWriteStream(path, { flags: 'wx', mode: 0o600 }));
    return path;
  } catch (err) {
    await rm(path, { force: true });
    if (isDiskFull(err)) throw diskFullError(dir, `the disk filled after ${received} bytes of the upload`);
    throw err;
  }
}
