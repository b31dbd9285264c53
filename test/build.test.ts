/** `npm run build` compiles beside dist/ and swaps the new tree in: dist/ is never missing meanwhile. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { ROOT } from './helpers/models.js';

describe('build', () => {
  it('keeps a whole dist/ in place while it compiles, then swaps in the new one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-build-'));
    mkdirSync(join(dir, 'scripts'));
    mkdirSync(join(dir, 'src'));
    copyFileSync(join(ROOT, 'scripts/build.mjs'), join(dir, 'scripts/build.mjs'));
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { module: 'NodeNext', outDir: 'dist', rootDir: '.', types: [] },
        include: ['src'],
      }),
    );
    const build = () =>
      new Promise<number | null>((resolve) =>
        spawn(process.execPath, [join(dir, 'scripts/build.mjs')], { stdio: 'inherit' }).once('exit', resolve),
      );
    const out = join(dir, 'dist/src/a.js');
    writeFileSync(join(dir, 'src/a.ts'), 'export const version: number = 1;\n');
    assert.equal(await build(), 0);
    assert.match(readFileSync(out, 'utf8'), /version = 1/);

    writeFileSync(join(dir, 'src/a.ts'), 'export const version: number = 2;\n');
    let running = true;
    let checks = 0;
    // the longest stretch without dist/src/a.js: the instant between the swap's two renames
    // (which bin/xbar.js waits out), never the compile
    let gapMs = 0;
    let missingSince: number | null = null;
    const started = performance.now();
    const done = build().finally(() => {
      running = false;
    });
    while (running) {
      checks++;
      const now = performance.now();
      if (existsSync(out)) missingSince = null;
      else {
        missingSince ??= now;
        gapMs = Math.max(gapMs, now - missingSince);
      }
      await new Promise((r) => setImmediate(r));
    }
    const buildMs = performance.now() - started;
    assert.equal(await done, 0);
    assert.ok(checks > 10, `${checks} checks while it built`);
    assert.ok(
      gapMs < Math.min(50, buildMs / 10),
      `dist/src/a.js was missing for ${gapMs} ms of a ${buildMs} ms build`,
    );
    assert.match(readFileSync(out, 'utf8'), /version = 2/);
    assert.deepEqual(readdirSync(dir).sort(), ['dist', 'node_modules', 'scripts', 'src', 'tsconfig.json']);
  });
});
