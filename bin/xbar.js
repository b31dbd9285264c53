#!/usr/bin/env node
// The `xbar` command: runs the compiled CLI (npm ci builds it; see README).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../dist/src/cli/main.js', import.meta.url));
if (!existsSync(main)) {
  console.error('xbar: not built yet. Run `npm ci` (or `npm run build`) in the xbar folder first.');
  process.exit(1);
}
await import(main);
