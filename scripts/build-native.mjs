#!/usr/bin/env node
/**
 * Builds the optional native kernels (native/*.cc → build/xbar_native.node) with the system's
 * C++ compiler for this machine's CPU (-march=native; XBAR_NATIVE_MARCH overrides, e.g.
 * x86-64-v4 for a build another machine will load). Without a compiler, or for a target without
 * AVX-512, it says so and exits 0: xbar then runs the same computations as ONNX graphs (slower
 * for bit-serial crossbars).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cxx = process.env.CXX ?? 'g++';
if (spawnSync(cxx, ['--version']).status !== 0) {
  console.log(`native kernels not built: no C++ compiler '${cxx}' (set CXX); xbar runs them as ONNX graphs`);
  process.exit(0);
}
const march = `-march=${process.env.XBAR_NATIVE_MARCH ?? 'native'}`;
// The kernel's 16-float vectors are one AVX-512 register. Built for AVX2 (x86-64-v3) the same
// source ran 6× slower on the same CPU (27 against 190 GFLOP/s on two Zen 5 cores), below the
// ~60 GFLOP/s the ONNX graphs reach in the model there (with AVX-512; on an AVX2-only CPU both
// would be slower, untested): without AVX-512 the kernels are not built, and any earlier build
// is removed.
const predefined = spawnSync(cxx, [march, '-dM', '-E', '-x', 'c++', '-'], { input: '', encoding: 'utf8' });
if (!/__AVX512F__/.test(predefined.stdout ?? '')) {
  rmSync(join(root, 'build', 'xbar_native.node'), { force: true });
  console.log(
    `native kernels not built: the target (${march}) has no AVX-512, where they run slower than the ONNX graphs; xbar runs them as ONNX graphs`,
  );
  process.exit(0);
}
// found where npm put it: in this checkout, or beside xbar in a project that installed it
const headers = join(dirname(createRequire(import.meta.url).resolve('node-api-headers/package.json')), 'include');
const out = join(root, 'build', 'xbar_native.node');
const partial = `${out}.${process.pid}.tmp`;
mkdirSync(dirname(out), { recursive: true });
const args = [
  '-O3',
  march,
  // the same float arithmetic on every machine: no fused multiply-adds the source does not write
  '-ffp-contract=off',
  '-fno-math-errno',
  '-fno-trapping-math',
  // GCC's Intel tunings prefer 256-bit vectors for loops it vectorises (the element loops of the
  // epilogue: square root, rounding, clip), which then went through the stack in halves (1.5-1.65x
  // slower on a 2-core Xeon); exact operations, so the same numbers
  '-mprefer-vector-width=512',
  '-std=c++17',
  '-shared',
  '-fPIC',
  '-pthread',
  `-I${headers}`,
  '-DNODE_GYP_MODULE_NAME=xbar_native',
  join(root, 'native', 'crossbar_products.cc'),
  '-o',
  partial,
];
const r = spawnSync(cxx, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.error(`native kernels: ${cxx} failed (status ${r.status}); xbar runs them as ONNX graphs`);
  process.exit(1);
}
renameSync(partial, out);
// what it was built from: the loader refuses a build whose source has changed since
const source = createHash('sha256').update(readFileSync(join(root, 'native', 'crossbar_products.cc'))).digest('hex');
writeFileSync(`${out}.json`, `${JSON.stringify({ source, flags: args.slice(0, args.indexOf('-std=c++17')) }, null, 1)}\n`);
console.log(`native kernels built: ${out}`);
