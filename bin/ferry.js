#!/usr/bin/env node
// The published entry point: the CLI is compiled to dist/ by `npm install` (prepare script).
import '../dist/src/cli/main.js';
