import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/**
 * A module loaded on first use. execa, tar and yaml together cost `ferry model list` about
 * 300 ms of start-up (execa alone is ~260 module files) though it never runs a child process,
 * reads an archive or a YAML file. Node 20.19+ can require() ES modules, so the load stays
 * synchronous and call sites do not change shape.
 */
export function lazyModule<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
