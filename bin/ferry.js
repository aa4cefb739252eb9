#!/usr/bin/env node
// The published entry point: the CLI is compiled to dist/ by `npm install` (prepare script);
// it never builds here, so `npx ferry` and a linked `ferry` start at node's own speed.
// Works when linked (`npm link`, `npm install -g .`): node resolves this file's real path.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  // Answered before loading the CLI: a version check should cost node's start-up and no more.
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  process.stdout.write(`${pkg.version}\n`);
} else {
  try {
    await import('../dist/src/cli/main.js');
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/src/cli/main.js')) throw err;
    process.stderr.write('ferry: build.missing: dist/ is not built\n  hint: run `npm install` (or `npm run build`) in the Ferry checkout\n');
    process.exitCode = 1;
  }
}
