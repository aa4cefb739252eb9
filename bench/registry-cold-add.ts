/**
 * One `ModelService.add` in a fresh process (for bench:registry's cold figure): prints the
 * milliseconds from the first registry access to the row being on disk, start-up excluded.
 */
import { FerryContext } from '../src/app/create-context.js';
import { loadConfig } from '../src/config/load-config.js';

const [id, path] = process.argv.slice(2);
const ctx = new FerryContext(loadConfig());
const t0 = performance.now();
await ctx.models.add({ id, path });
process.stdout.write(`${(performance.now() - t0).toFixed(1)}\n`);
await ctx.close();
