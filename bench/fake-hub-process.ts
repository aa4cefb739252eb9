/**
 * The fake Hub in a process of its own for the pull benchmark, so serving bytes does not share
 * an event loop with the code being measured. Prints one JSON line when ready.
 * BENCH_BYTES: the unthrottled file's size. BENCH_THROTTLED_BYTES (comma-separated sizes) and
 * BENCH_THROTTLE_BPS: files served at that many bytes per second per connection, as a CDN that
 * caps each connection does.
 */
import { startFakeHub } from '../test/support/fake-hub.js';

const bytes = Number(process.env.BENCH_BYTES ?? 2 * 1024 ** 3);
const throttledSizes = (process.env.BENCH_THROTTLED_BYTES ?? '').split(',').filter(Boolean).map(Number);
const throttleBps = Number(process.env.BENCH_THROTTLE_BPS ?? 4 * 1024 * 1024);
const hub = await startFakeHub();
hub.addRepo({ id: 'bench/big-GGUF', files: [{ path: 'big-Q4_K_M.gguf', size: bytes, seed: 42 }] });
const throttled = [];
for (const [i, size] of throttledSizes.entries()) {
  const file = `capped-${size}.gguf`;
  hub.addRepo({ id: `bench/capped-${i}-GGUF`, files: [{ path: file, size, seed: 100 + i }] });
  hub.fault(`bench/capped-${i}-GGUF`, file, { kind: 'slow', bytesPerSecond: throttleBps });
  throttled.push({ repo: `bench/capped-${i}-GGUF`, file, bytes: size, sha256: await hub.sha256(`bench/capped-${i}-GGUF`, file) });
}
const sha256 = await hub.sha256('bench/big-GGUF', 'big-Q4_K_M.gguf');
process.stdout.write(JSON.stringify({ url: hub.url, repo: 'bench/big-GGUF', file: 'big-Q4_K_M.gguf', bytes, sha256, throttled, throttleBps }) + '\n');
process.on('SIGTERM', () => void hub.close().then(() => process.exit(0)));
