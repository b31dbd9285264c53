#!/usr/bin/env node
/**
 * Compiles the TypeScript into a new folder beside dist/ and then swaps it in, so that an
 * `xbar` started during a build (or `npm test`) finds a whole tree, old or new, never none.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const dist = join(root, 'dist');
const next = `${dist}.next-${process.pid}`;
const old = `${dist}.old-${process.pid}`;
const r = spawnSync(process.execPath, [tsc, '-p', root, '--outDir', next], { stdio: 'inherit' });
if (r.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  process.exit(r.status ?? 1);
}
// two renames: the old tree is gone for the moment between them only
if (existsSync(dist)) renameSync(dist, old);
renameSync(next, dist);
rmSync(old, { recursive: true, force: true });
