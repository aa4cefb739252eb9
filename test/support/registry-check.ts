import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'smol-toml';
import { REGISTRY_FILE } from '../../src/registry/registry-store.js';

/** registry.toml parsed from disk (throws if it is not valid TOML): the models table by id. */
export async function parsedRegistry(registryDir: string): Promise<Record<string, Record<string, unknown>>> {
  const doc = parse(await readFile(join(registryDir, REGISTRY_FILE), 'utf8')) as { models?: Record<string, Record<string, unknown>> };
  return doc.models ?? {};
}

/** sha256 of a file read back from disk. */
export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
