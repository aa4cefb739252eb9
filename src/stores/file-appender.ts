import type { ByteSink } from '../util/byte-sink.js';

/** A ByteSink that appends to one file, in order. */
export interface FileAppender extends ByteSink {
  /** Writes everything committed so far; rejects with the first write error, if any. */
  flush(): Promise<void>;
  /** Waits for writes in flight and releases the file. Never throws. */
  close(): Promise<void>;
}
