#!/usr/bin/env node
/**
 * Builds the optional native kernels (native/*.cc → build/xbar_native.node) with the system's
 * C++ compiler for the CPU that builds them (-march=native; XBAR_NATIVE_MARCH overrides, e.g.
 * x86-64-v4 for a build another machine will load). Without a compiler, or for a target without
 * AVX-512, it says so and exits 0: xbar then runs the same computations as ONNX graphs (slower
 * for bit-serial crossbars). The kernel's constants (the programming-noise kinds' codes, the
 * pcm fit) come from the compiled TypeScript (dist/src/analog/write-noise.js, or under the
 * folder given as the argument): this writes them into build/generated/native_constants.h
 * first, so run it after `tsc` (`npm run build` does).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeConstantsHeader } from './native-constants.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cxx = process.env.CXX ?? 'g++';
if (spawnSync(cxx, ['--version']).status !== 0) {
  console.log(`native kernels not built: no C++ compiler '${cxx}' (set CXX); xbar runs them as ONNX graphs`);
  process.exit(0);
}
const march = `-march=${process.env.XBAR_NATIVE_MARCH ?? 'native'}`;
// The kernel's 16-float vectors are one AVX-512 register. Built for AVX2 (x86-64-v3) the same
// source runs slower than the ONNX graphs (docs/analog-model.md): without AVX-512 the kernels are
// not built, and any earlier build is removed.
const predefined = spawnSync(cxx, [march, '-dM', '-E', '-x', 'c++', '-'], { input: '', encoding: 'utf8' });
if (!/__AVX512F__/.test(predefined.stdout ?? '')) {
  rmSync(join(root, 'build', 'xbar_native.node'), { force: true });
  console.log(
    `native kernels not built: the target (${march}) has no AVX-512, where they run slower than the ONNX graphs; xbar runs them as ONNX graphs`,
  );
  process.exit(0);
}
// the constants header, from the compiled TypeScript: dist/, or the folder given (a build made beside dist/)
const generated = await writeConstantsHeader(process.argv[2]);
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
  // epilogue: square root, rounding, clip), which then go through the stack in halves, slower
  // (docs/analog-model.md); exact operations, so the same numbers
  '-mprefer-vector-width=512',
  '-std=c++17',
  '-shared',
  '-fPIC',
  '-pthread',
  `-I${headers}`,
  `-I${generated}`,
  // a programming-noise kind the kernel has no case for fails the build
  '-Werror=switch',
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

