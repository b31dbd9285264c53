#!/usr/bin/env node
// The `xbar` command. In a source checkout it compiles the TypeScript on first use (the native
// kernels come prebuilt).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const main = `${root}dist/src/cli/main.js`;
// a build swaps dist/ for a new tree with two renames (scripts/build.mjs); wait out the instant
// between them rather than compile again
for (let i = 0; i < 50 && !existsSync(main) && readdirSync(root).some((f) => /^dist\.old-\d+$/.test(f)); i++)
  await new Promise((r) => setTimeout(r, 100));
if (!existsSync(main)) {
  const tsc = `${root}node_modules/typescript/bin/tsc`;
  if (!existsSync(tsc)) {
    console.error(`xbar: ${main} is missing and TypeScript is not installed; run \`npm ci\` in ${root}`);
    process.exit(1);
  }
  console.error('xbar: compiling (first run)…');
  const r = spawnSync(process.execPath, [`${root}scripts/build.mjs`], { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
await import(main);
