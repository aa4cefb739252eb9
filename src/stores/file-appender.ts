/** Something that appends a stream's chunks to one file, in order. */
export interface FileAppender {
  /**
   * Takes one chunk. Resolves as soon as the chunk is queued (usually at once); waits only when
   * the writes in flight already hold as much as the appender buffers, which is what slows the
   * sender down. Rejects with the first write error.
   */
  append(chunk: Buffer): Promise<void>;
  /** Writes everything taken so far; rejects with the first write error, if any. */
  flush(): Promise<void>;
  /** Waits for writes in flight and releases the file. Never throws. */
  close(): Promise<void>;
}
