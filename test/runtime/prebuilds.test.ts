/**
 * The committed native kernels (prebuilds/, made by `npm run build:native`) and their loader
 * (src/runtime/native.ts): built from the source as it is, refused when stale or altered, the
 * best target this CPU runs chosen unless XBAR_KERNEL names another, and named by `xbar --version`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { NATIVE_CONSTANTS } from '../../src/analog/write-noise.js';
import { type KernelInfo, nativeTargets } from '../../src/runtime/native.js';
import { XBAR } from '../helpers/cli.js';
import { ROOT } from '../helpers/models.js';

interface Checksums {
  source: string;
  harnessSource: string;
  constants: string;
  files: Record<string, { target?: string; sha256: string }>;
}

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');
const checksums = JSON.parse(readFileSync(join(ROOT, 'prebuilds', 'checksums.json'), 'utf8')) as Checksums;
const targets = nativeTargets();

describe('the prebuilt native kernels', () => {
  it('were built from the kernel source, harness and constants as they are now (else: npm run build:native)', async () => {
    const { constantsHeader } = (await import(
      pathToFileURL(join(ROOT, 'scripts', 'native-constants.mjs')).href
    )) as {
      constantsHeader: (c: unknown) => string;
    };
    const stale = 'prebuilds/checksums.json is stale: run `npm run build:native` and commit prebuilds/';
    const kernel = ['crossbar_products.cc', 'philox.h'].map((f) => readFileSync(join(ROOT, 'native', f)));
    assert.equal(checksums.source, sha256(Buffer.concat(kernel)), stale);
    assert.equal(checksums.harnessSource, sha256(readFileSync(join(ROOT, 'native', 'harness.cc'))), stale);
    assert.equal(checksums.constants, sha256(constantsHeader(NATIVE_CONSTANTS)), stale);
    const files = Object.keys(checksums.files).sort();
    assert.deepEqual(files, [
      'harness/linux-arm64/xbar_kernel_harness',
      'harness/linux-x64/xbar_kernel_harness',
      'linux-arm64/xbar_native.arm64.armv8.napi.glibc.node',
      'linux-x64/xbar_native.x86-64-v3.napi.glibc.node',
      'linux-x64/xbar_native.x86-64-v4.napi.glibc.node',
    ]);
    for (const f of files)
      assert.equal(
        sha256(readFileSync(join(ROOT, 'prebuilds', f))),
        checksums.files[f]!.sha256,
        `prebuilds/${f}`,
      );
  });

  it('the loader refuses a prebuild of another source, and one whose bytes differ, and says why', {
    skip: targets.length > 0 ? false : 'no native kernel runs on this CPU',
  }, () => {
    // the loader and what it reads, in a tree of their own
    const dir = mkdtempSync(join(tmpdir(), 'xbar-prebuilds-'));
    try {
      const best = Object.entries(checksums.files).find(([, e]) => e.target === targets[0])![0];
      for (const f of [
        'dist/src/runtime/native.js',
        'dist/src/runtime/wasm.js',
        'dist/src/util/philox.js',
        'dist/src/util/math.js',
        'dist/src/util/errors.js',
        'native/crossbar_products.cc',
        'native/philox.h',
        'prebuilds/checksums.json',
        `prebuilds/${best}`,
      ]) {
        mkdirSync(dirname(join(dir, f)), { recursive: true });
        copyFileSync(join(ROOT, f), join(dir, f));
      }
      const info = () => {
        const loader = pathToFileURL(join(dir, 'dist/src/runtime/native.js')).href;
        const r = spawnSync(
          process.execPath,
          [
            '--input-type=module',
            '-e',
            `console.log(JSON.stringify((await import('${loader}')).kernelInfo()))`,
          ],
          { encoding: 'utf8', env: { ...process.env, XBAR_KERNEL: '', XBAR_NATIVE: '' } },
        );
        assert.equal(r.status, 0, r.stderr);
        return { info: JSON.parse(r.stdout) as KernelInfo, stderr: r.stderr };
      };
      assert.equal(info().info.kind, 'native', 'the copied tree loads its kernel');
      appendFileSync(join(dir, 'native/crossbar_products.cc'), '// an edit\n');
      const stale = info();
      assert.equal(stale.info.kind, 'onnx');
      const why =
        /built from another version of native\/crossbar_products\.cc or native\/philox\.h; run `npm run build:native`/;
      assert.match((stale.info as { reason: string }).reason, why);
      assert.match(stale.stderr, why, 'said on stderr');
      copyFileSync(join(ROOT, 'native/crossbar_products.cc'), join(dir, 'native/crossbar_products.cc'));
      const binary = readFileSync(join(dir, 'prebuilds', best));
      binary[binary.length - 100]! ^= 1;
      writeFileSync(join(dir, 'prebuilds', best), binary);
      const damaged = info();
      assert.equal(damaged.info.kind, 'onnx');
      assert.match(
        (damaged.info as { reason: string }).reason,
        /not the file prebuilds\/checksums\.json lists/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  const version = (env: Record<string, string>) =>
    spawnSync(process.execPath, [XBAR, '--version'], { encoding: 'utf8', env: { ...process.env, ...env } });

  it('xbar --version names the kernel: the best target this CPU runs, XBAR_KERNEL’s, or the ONNX graphs', {
    skip: targets.length > 0 ? false : 'no native kernel runs on this CPU',
  }, () => {
    const clear = { XBAR_KERNEL: '', XBAR_NATIVE: '' };
    assert.match(
      version(clear).stdout,
      new RegExp(`^\\d+\\.\\d+\\.\\d+\\ncrossbar kernel: native ${targets[0]} \\(`),
    );
    const last = targets[targets.length - 1]!;
    assert.match(
      version({ ...clear, XBAR_KERNEL: last }).stdout,
      new RegExp(`crossbar kernel: native ${last} \\(`),
    );
    assert.match(
      version({ ...clear, XBAR_NATIVE: '0' }).stdout,
      /crossbar kernel: ONNX graphs \(XBAR_NATIVE=0\)/,
    );
  });

  it('XBAR_KERNEL with a target not built for this platform is refused, naming the variable, value and targets', () => {
    const r = version({ XBAR_KERNEL: 'x86-64-v9', XBAR_NATIVE: '' });
    assert.notEqual(r.status, 0);
    assert.match(
      r.stderr,
      /XBAR_KERNEL=x86-64-v9: (use one of [\w-]+(, [\w-]+)*|no native kernel is prebuilt)/,
    );
  });
});
