import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';

export type ProgressFn = (bytesDone: number) => void;

/**
 * A pass-through that hashes and counts the bytes flowing through it, so content is
 * verified in the same pass that writes it (never a second read of a finished file).
 */
export class HashingPassThrough extends Transform {
  readonly hash: Hash;
  bytes = 0;

  constructor(private readonly onBytes?: ProgressFn, hash: Hash = createHash('sha256'), startBytes = 0) {
    super();
    this.hash = hash;
    this.bytes = startBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onBytes?.(this.bytes);
    done(null, chunk);
  }
}

/** Streams a file through SHA-256 in 1 MiB reads; the event loop stays free between chunks. */
export async function sha256File(path: string, onProgress?: ProgressFn, hash: Hash = createHash('sha256'), signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  const hasher = new HashingPassThrough(onProgress, hash);
  await pipeline(createReadStream(path, { highWaterMark: 1 << 20 }), hasher, async function* (source) {
    for await (const _ of source) {
      // drain: the hash is updated in the transform
    }
  }, signal ? { signal } : {});
  return { sha256: hasher.hash.digest('hex'), bytes: hasher.bytes };
}
