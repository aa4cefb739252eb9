/**
 * The fake Hub in a process of its own for the pull benchmark, so serving bytes does not share
 * an event loop with the code being measured. Prints one JSON line when ready.
 */
import { startFakeHub } from '../test/support/fake-hub.js';

const bytes = Number(process.env.BENCH_BYTES ?? 2 * 1024 ** 3);
const hub = await startFakeHub();
hub.addRepo({ id: 'bench/big-GGUF', files: [{ path: 'big-Q4_K_M.gguf', size: bytes, seed: 42 }] });
const sha256 = await hub.sha256('bench/big-GGUF', 'big-Q4_K_M.gguf');
process.stdout.write(JSON.stringify({ url: hub.url, repo: 'bench/big-GGUF', file: 'big-Q4_K_M.gguf', bytes, sha256 }) + '\n');
process.on('SIGTERM', () => void hub.close().then(() => process.exit(0)));
