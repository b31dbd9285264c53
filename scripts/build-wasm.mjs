#!/usr/bin/env node
/**
 * Builds the WebAssembly kernels (native/crossbar_products.cc through
 * native/crossbar_products_wasm.cc → prebuilds/wasm/xbar.wasm) with clang and wasm-ld: wasm32
 * with SIMD128, threads on shared memory, no libc (the C++ standard library's headers only, from
 * the system's GCC). The binary is committed with prebuilds/wasm/xbar.wasm.json, the SHA-256 of
 * it and of the sources and generated constants it was built from: src/runtime/wasm.ts refuses
 * a binary that differs from its checksum or was built from other sources, and a test fails
 * when the committed binary is stale. Run after `tsc` (the constants come from the compiled
 * TypeScript): `npm run build:wasm`. CLANG and WASM_LD name other tools.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeConstantsHeader } from './native-constants.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const clang = process.env.CLANG ?? 'clang++-14';
const wasmLd = process.env.WASM_LD ?? 'wasm-ld-14';
for (const tool of [clang, wasmLd])
  if (spawnSync(tool, ['--version']).status !== 0) {
    console.error(`build-wasm: '${tool}' not found (set CLANG and WASM_LD: clang and wasm-ld 14 or later)`);
    process.exit(1);
  }
const { generated, header } = await writeConstantsHeader('build-wasm');
const sources = ['native/crossbar_products.cc', 'native/philox.h', 'native/crossbar_products_wasm.cc'];
const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');

// The standard library's headers (vector, atomic, function: templates only, nothing linked)
// from the newest GCC installed, its target configuration adapted to a libc without glibc's
// version macro; C headers from wasi-libc.
const gccVersions = existsSync('/usr/include/c++')
  ? readdirSync('/usr/include/c++').filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
  : [];
const gcc = gccVersions[0];
const config = gcc && readdirSync('/usr/include').find((d) => existsSync(join('/usr/include', d, 'c++', gcc, 'bits', 'c++config.h')));
if (!gcc || !config || !existsSync('/usr/include/wasm32-wasi/stdlib.h')) {
  console.error('build-wasm: needs the GCC C++ headers (/usr/include/c++/N) and wasi-libc (/usr/include/wasm32-wasi)');
  process.exit(1);
}

const compile = [
  '--target=wasm32-wasi',
  // SIMD128; atomics and bulk memory for threads on a shared memory; mutable globals to give each
  // worker instance its own stack pointer
  '-msimd128',
  '-matomics',
  '-mbulk-memory',
  '-mmutable-globals',
  '-O3',
  // the same float arithmetic as every other build: no fused multiply-adds the source does not write
  '-ffp-contract=off',
  '-fno-math-errno',
  '-fno-trapping-math',
  '-fno-exceptions',
  '-fno-rtti',
  '-std=c++17',
  '-nostdinc++',
  '-D__GLIBC_PREREQ(a,b)=0',
  '-Werror=switch',
];
const includes = [
  `-isystem/usr/include/c++/${gcc}`,
  `-isystem/usr/include/${config}/c++/${gcc}`,
  '-isystem/usr/include/wasm32-wasi',
  `-I${generated}`,
];
const link = [
  '--no-entry',
  // the loader makes the memory (shared, up to wasm32's 4 GiB) and gives it to every instance
  '--import-memory',
  '--shared-memory',
  '--initial-memory=4194304',
  '--max-memory=4294967296',
  '--stack-first',
  '-z',
  'stack-size=1048576',
  '--export=__stack_pointer',
  '--strip-all',
];
const out = join(root, 'prebuilds', 'wasm', 'xbar.wasm');
mkdirSync(dirname(out), { recursive: true });
const object = join(root, 'build', `xbar_wasm.${process.pid}.o`);
const partial = `${out}.${process.pid}.tmp`;
const run = (tool, args) => {
  const r = spawnSync(tool, args, { stdio: 'inherit' });
  if (r.status !== 0) {
    rmSync(object, { force: true });
    rmSync(partial, { force: true });
    console.error(`build-wasm: ${tool} failed (status ${r.status})`);
    process.exit(1);
  }
};
run(clang, [...compile, ...includes, '-c', join(root, 'native', 'crossbar_products_wasm.cc'), '-o', object]);
run(wasmLd, [...link, object, '-o', partial]);
rmSync(object);
renameSync(partial, out);
const version = spawnSync(clang, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
const stamp = {
  wasm: sha256(readFileSync(out)),
  sources: Object.fromEntries(sources.map((s) => [s, sha256(readFileSync(join(root, s)))])),
  constants: sha256(header),
  compiler: version,
  compile,
  link,
};
writeFileSync(`${out}.json`, `${JSON.stringify(stamp, null, 1)}\n`);
console.log(`WebAssembly kernels built: ${relative(root, out)} (${readFileSync(out).length} bytes)`);
