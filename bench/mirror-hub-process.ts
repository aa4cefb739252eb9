/**
 * The fake Hub in a process of its own for bench:mirror: one repo holding the warm file and the
 * fresh files each cold run needs (generated on the fly, never held in memory). Prints one JSON
 * line when ready.
 */
import { startFakeHub, type FakeFile } from '../test/support/fake-hub.js';

const warmBytes = Number(process.env.BENCH_WARM_BYTES ?? 2 * 1024 ** 3);
const coldBytes = Number(process.env.BENCH_COLD_BYTES ?? 1024 ** 3);
const runs = Number(process.env.BENCH_RUNS ?? 3);
const files: FakeFile[] = [{ path: 'warm.gguf', size: warmBytes, seed: 1 }];
for (let i = 0; i < runs; i++) {
  for (const kind of ['ferry-one', 'direct-one', 'ferry-five']) files.push({ path: `${kind}-${i}.gguf`, size: coldBytes, seed: 100 + files.length });
}
const hub = await startFakeHub();
hub.addRepo({ id: 'bench/mirror-GGUF', files });
const sha256 = await hub.sha256('bench/mirror-GGUF', 'warm.gguf');
process.stdout.write(JSON.stringify({ url: hub.url, repo: 'bench/mirror-GGUF', warmSha256: sha256 }) + '\n');
process.on('SIGTERM', () => void hub.close().then(() => process.exit(0)));
