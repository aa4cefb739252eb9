/**
 * Entry of a download thread (see downloadFileInThread): runs downloadFile and reports back.
 * Progress is posted at most every 100 ms; the caller's tracker throttles further.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { downloadFile } from './download-file.js';
import { serializeError, type AbortMessage, type ThreadMessage, type ThreadRequest } from './download-in-thread.js';
import { HfClient } from './hf-client.js';

const BYTES_EVERY_MS = 100;
const port = parentPort!;
const request = workerData as ThreadRequest;
const controller = new AbortController();
port.on('message', (m: AbortMessage) => m.type === 'abort' && controller.abort());
const post = (m: ThreadMessage) => port.postMessage(m);

let lastBytesAt = 0;
try {
  const result = await downloadFile({
    ...request,
    client: new HfClient(request.client),
    signal: controller.signal,
    onBytes: (bytes) => {
      const now = Date.now();
      if (now - lastBytesAt < BYTES_EVERY_MS) return;
      lastBytesAt = now;
      post({ type: 'bytes', bytes });
    },
    onEvent: (message) => post({ type: 'event', message }),
  });
  post({ type: 'done', result });
} catch (err) {
  post({ type: 'error', error: serializeError(err) });
}
