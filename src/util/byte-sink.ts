/**
 * Memory the next bytes of a stream go into. The producer fills a prefix of what `lend` answers
 * and then calls `commit`; a socket can read straight into it, so the bytes are never copied on
 * their way to the disk.
 */
export interface ByteSink {
  /** Memory for the next bytes, or undefined while none is free (wait for `writable`). Lending has no effect of its own: asking twice answers the same memory. */
  lend(): Buffer | undefined;
  /** The first `n` bytes of what `lend` last answered are the stream's next bytes. */
  commit(n: number): void;
  /** Resolves once `lend` can answer; rejects with the first write error. */
  writable(): Promise<void>;
}

/** Copies `chunk` into `sink`, for sources that bring their own buffers. */
export async function copyIntoSink(sink: ByteSink, chunk: Buffer): Promise<void> {
  for (let from = 0; from < chunk.length; ) {
    const into = sink.lend();
    if (!into) {
      await sink.writable();
      continue;
    }
    const n = chunk.copy(into, 0, from);
    sink.commit(n);
    from += n;
  }
}

/** Copies each chunk of `source` into `sink`; `onChunk` sees it first. */
export async function copyStreamIntoSink(source: AsyncIterable<Buffer>, sink: ByteSink, onChunk?: (chunk: Buffer) => void): Promise<void> {
  for await (const chunk of source) {
    onChunk?.(chunk);
    await copyIntoSink(sink, chunk);
  }
}
