#!/usr/bin/env node
/**
 * Builds the native kernel's prebuilt binaries (`npm run build:native`, a developer command:
 * users get them committed, with nothing to compile). With Debian's g++ and
 * g++-aarch64-linux-gnu, native/crossbar_products.cc becomes, named as node-gyp-build names
 * prebuilds (prebuilds/<platform>-<arch>/<name>.<tags>.node; the CPU target is a tag of its own):
 *
 *   prebuilds/linux-x64/xbar_native.x86-64-v4.napi.glibc.node     AVX-512
 *   prebuilds/linux-x64/xbar_native.x86-64-v3.napi.glibc.node     AVX2 and FMA
 *   prebuilds/linux-arm64/xbar_native.arm64.armv8.napi.glibc.node  armv8-a (NEON)
 *
 * and the kernel harness (native/harness.cc: the kernel without Node, for checking the arm64
 * build under qemu-aarch64), static, for linux-x64 and linux-arm64 under prebuilds/harness/.
 * prebuilds/checksums.json records the SHA-256 of each file and of the source and generated
 * constants they were built from: src/runtime/native.ts refuses a binary that does not match,
 * and test/runtime/prebuilds.test.ts fails when the committed ones are stale.
 *
 * The kernel's constants (the programming-noise kinds' codes, the pcm fit) come from the
 * compiled TypeScript (dist/src/analog/write-noise.js): run it after `npm run build`.
 * `--check` only says whether the committed binaries match the source (exit 1 if not).
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeConstantsHeader } from './native-constants.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const prebuilds = join(root, 'prebuilds');
const sha256 = (data) => createHash('sha256').update(data).digest('hex');

// the compiled TypeScript's constants
const { generated, header } = await writeConstantsHeader('build-native');
// the kernel and the generator it includes, in this order (src/runtime/native.ts hashes the same)
const kernelSource = Buffer.concat(['crossbar_products.cc', 'philox.h'].map((f) => readFileSync(join(root, 'native', f))));
const harnessSource = readFileSync(join(root, 'native', 'harness.cc'));
const stamp = {
  source: sha256(kernelSource),
  harnessSource: sha256(harnessSource),
  constants: sha256(header),
};

if (process.argv.includes('--check')) {
  const file = join(prebuilds, 'checksums.json');
  const committed = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const stale = Object.keys(stamp).filter((k) => committed[k] !== stamp[k]);
  if (stale.length > 0) {
    console.error(`prebuilds/checksums.json: ${stale.join(', ')} differ from the source; run \`npm run build:native\``);
    process.exit(1);
  }
  console.log('prebuilds match the source');
  process.exit(0);
}

// the same float arithmetic on every target: no fused multiply-adds the source does not write
const common = ['-O3', '-ffp-contract=off', '-fno-math-errno', '-fno-trapping-math', '-std=c++17', '-pthread'];
// the system's C++ runtime (GCC 12's or later, as on Debian 12 and Ubuntu 22.04): linked in, it
// would bring a need for glibc 2.36 (std::random_device's arc4random, pulled in with exceptions)
const portable = ['-s'];
const x64 = 'g++';
const arm64 = 'aarch64-linux-gnu-g++';
const kernels = [
  // GCC's Intel tunings prefer 256-bit vectors for the loops it vectorises itself, which then go
  // through the stack in halves, slower (docs/analog-model.md); the same numbers either way
  { target: 'x86-64-v4', dir: 'linux-x64', cxx: x64, flags: ['-march=x86-64-v4', '-mprefer-vector-width=512'] },
  { target: 'x86-64-v3', dir: 'linux-x64', cxx: x64, flags: ['-march=x86-64-v3'] },
  { target: 'arm64', dir: 'linux-arm64', cxx: arm64, flags: ['-march=armv8-a'], tags: 'armv8.' },
];
const harnesses = [
  { dir: 'linux-x64', cxx: x64, flags: ['-march=x86-64-v3'] },
  { dir: 'linux-arm64', cxx: arm64, flags: ['-march=armv8-a'] },
];
for (const cxx of [x64, arm64])
  if (spawnSync(cxx, ['--version']).status !== 0) {
    console.error(`build-native: no C++ compiler '${cxx}' (Debian: apt-get install g++ g++-aarch64-linux-gnu)`);
    process.exit(1);
  }

// found where npm put it
const napiHeaders = join(dirname(createRequire(import.meta.url).resolve('node-api-headers/package.json')), 'include');
const includes = [`-I${napiHeaders}`, `-I${generated}`, '-Werror=switch'];

/** Compiles into `out` (through a temporary file, so a failed build leaves the old one). */
async function compile(cxx, args, out) {
  mkdirSync(dirname(out), { recursive: true });
  const partial = `${out}.${process.pid}.tmp`;
  const status = await new Promise((resolve) =>
    spawn(cxx, [...args, '-o', partial], { stdio: 'inherit' }).once('exit', resolve),
  );
  if (status !== 0) {
    rmSync(partial, { force: true });
    console.error(`build-native: ${cxx} failed (status ${status}) for ${relative(root, out)}`);
    process.exit(1);
  }
  renameSync(partial, out);
  return { sha256: sha256(readFileSync(out)) };
}

const files = {};
const builds = [
  ...kernels.map((k) => {
    const file = `${k.dir}/xbar_native.${k.target}.${k.tags ?? ''}napi.glibc.node`;
    const flags = [...common, ...k.flags];
    const args = [...flags, ...portable, '-shared', '-fPIC', ...includes, '-DNODE_GYP_MODULE_NAME=xbar_native'];
    return { file, entry: { target: k.target, flags }, cxx: k.cxx, args: [...args, join(root, 'native', 'crossbar_products.cc')] };
  }),
  ...harnesses.map((h) => {
    const file = `harness/${h.dir}/xbar_kernel_harness`;
    const flags = [...common, ...h.flags];
    return { file, entry: { flags }, cxx: h.cxx, args: [...flags, '-static', '-s', ...includes, join(root, 'native', 'harness.cc')] };
  }),
];
// two at a time: the compilers take a while each
const pending = [...builds];
await Promise.all(
  [0, 1].map(async () => {
    for (let b; (b = pending.shift()); ) {
      files[b.file] = { ...b.entry, ...(await compile(b.cxx, b.args, join(prebuilds, b.file))) };
      console.log(`built prebuilds/${b.file}`);
    }
  }),
);
const version = spawnSync(x64, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
const ordered = Object.fromEntries(builds.map((b) => [b.file, files[b.file]]));
writeFileSync(
  join(prebuilds, 'checksums.json'),
  `${JSON.stringify({ ...stamp, compiler: version, files: ordered }, null, 1)}\n`,
);
console.log('wrote prebuilds/checksums.json');
