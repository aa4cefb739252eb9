import { readFileSync } from 'node:fs';

/** Ferry's version from its package.json (dist/src/cli/ or src/cli/ alike: the nearest one named ferry). */
export function ferryVersion(): string {
  for (const up of ['../../package.json', '../../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'ferry' && pkg.version) return pkg.version;
    } catch {
      // not this level
    }
  }
  return 'unknown';
}
