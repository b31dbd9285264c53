/**
 * The counter-based generator of util/philox.ts (and native/philox.h) in WGSL: Philox4x32-10 and
 * its float32 Box–Muller transform, the same operations in the same order. The integer words are
 * the CPU's bit for bit (WGSL has no 32×32→64 multiply: the high half is built from 16-bit halves,
 * as util/philox.ts does); the Gaussian values are within a few float32 ulps of the CPU's, since
 * WGSL's division and square root need not be correctly rounded and the shader compiler may fuse
 * a multiply and an add.
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import { RUN_STRUCT } from '../../graph/gpu-kernel.js';
import type { NoiseLayout } from '../../util/philox.js';

/** A float32 constant as a WGSL literal that converts to exactly that float32. */
export const f32Literal = (x: number): string => `f32(${Math.fround(x)})`;

/**
 * WGSL functions: `philox(counter, key) -> vec4<u32>` (Philox4x32-10) and
 * `gaussianBlock(counter, key) -> vec4<f32>` (the four N(0, 1) values of a block, lanes as
 * util/philox.ts gaussianBlock).
 */
export const PHILOX_WGSL = /* wgsl */ `
// a·b = ah·bh·2^32 + (ah·bl + al·bh)·2^16 + al·bl in 16-bit halves; t = ah·bl + (al·bh mod 2^16)
// + ⌊al·bl / 2^16⌋ ≤ (2^16 − 1)² + 2·(2^16 − 1) < 2^32 carries the middle terms without overflow
fn mulhi32(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu;
  let ah = a >> 16u;
  let bl = b & 0xffffu;
  let bh = b >> 16u;
  let lh = al * bh;
  let t = ah * bl + (lh & 0xffffu) + ((al * bl) >> 16u);
  return ah * bh + (lh >> 16u) + (t >> 16u);
}

fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var x = counter;
  var k = key;
  for (var round = 0u; round < 10u; round++) {
    let hi0 = mulhi32(0xd2511f53u, x.x);
    let lo0 = 0xd2511f53u * x.x;
    let hi1 = mulhi32(0xcd9e8d57u, x.z);
    let lo1 = 0xcd9e8d57u * x.z;
    x = vec4<u32>(hi1 ^ x.y ^ k.x, lo1, hi0 ^ x.w ^ k.y, lo0);
    k += vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return x;
}

// sqrt(−2·ln u), u = t·2^−32, t = w + 1 rounded to float32 (util/philox.ts boxMullerRadius)
fn boxMullerRadius(w: u32) -> f32 {
  let t = f32(w >> 16u) * 65536.0f + f32((w & 0xffffu) + 1u);
  let bits = bitcast<i32>(t);
  var m = bitcast<f32>((bits & 0x007fffff) | 0x3f000000);
  var e = (bits >> 23u) - 158;
  if (m < ${f32Literal(Math.SQRT1_2)}) {
    m = m * 2.0f;
    e -= 1;
  }
  let s = (m - 1.0f) / (m + 1.0f);
  let z = s * s;
  let series = 1.0f + z * (${f32Literal(1 / 3)} + z * (${f32Literal(1 / 5)} + z * (${f32Literal(1 / 7)} + z * ${f32Literal(1 / 9)})));
  let lnU = (2.0f * s) * series + f32(e) * ${f32Literal(Math.LN2)};
  return sqrt(-2.0f * lnU);
}

// (cos, sin) of 2π·w/2^32 (util/philox.ts boxMullerAngle)
fn boxMullerAngle(w: u32) -> vec2<f32> {
  let octant = w >> 29u;
  let phi = f32((w >> 5u) & 0xffffffu) * ${f32Literal(2 ** -24)} * ${f32Literal(Math.PI / 4)};
  let z = phi * phi;
  let sn = phi * (1.0f + z * (${f32Literal(-1 / 6)} + z * (${f32Literal(1 / 120)} + z * (${f32Literal(-1 / 5040)} + z * ${f32Literal(1 / 362880)}))));
  let cs = 1.0f + z * (${f32Literal(-1 / 2)} + z * (${f32Literal(1 / 24)} + z * (${f32Literal(-1 / 720)} + z * (${f32Literal(1 / 40320)} + z * ${f32Literal(-1 / 3628800)}))));
  let swap = ((octant + 1u) >> 1u) & 1u;
  let c = select(cs, sn, swap == 1u);
  let s = select(sn, cs, swap == 1u);
  return vec2<f32>(select(c, -c, octant >= 2u && octant <= 5u), select(s, -s, octant >= 4u));
}

fn gaussianBlock(counter: vec4<u32>, key: vec2<u32>) -> vec4<f32> {
  let x = philox(counter, key);
  let r0 = boxMullerRadius(x.x);
  let a0 = boxMullerAngle(x.y);
  let r1 = boxMullerRadius(x.z);
  let a1 = boxMullerAngle(x.w);
  return vec4<f32>(r0 * a0.x, r0 * a0.y, r1 * a1.x, r1 * a1.y);
}
`;

/** Threads per workgroup of the noise kernel. */
const NOISE_GROUP = 64;
/** Workgroups along x at most (a grid dimension's limit). */
export const MAX_GRID = 65535;

/** A 2-D grid of workgroups covering `groups` of them, and the WGSL for a workgroup's linear index. */
export function linearGrid(groups: number): { grid: [number, number, number]; index: string } {
  const x = Math.max(1, Math.min(groups, MAX_GRID));
  const y = Math.max(1, Math.ceil(groups / x));
  if (y > MAX_GRID) throw new RangeError(`a kernel of ${groups} workgroups exceeds the grid's ${MAX_GRID}²`);
  return { grid: [x, y, 1], index: `(wg.y * ${x}u + wg.x)` };
}

/**
 * The graph's `noise` op on the GPU: N(0, std²) float32 values in the order and with the keys of
 * util/philox.ts fillNoise (element (o, a, i, c) of `layout`: lane c mod 4 of the block at counter
 * (⌊c/4⌋, q, firstSample + ⌊a/perSample⌋, 0) under key (seed, 0)), firstSample from the Run
 * uniform. One thread per block of 4 columns.
 */
export function noiseKernel(
  shape: readonly number[],
  layout: NoiseLayout,
  seed: number,
  std: number,
): KernelSpec {
  const { outer, along, perSample, inner, columns } = layout;
  const total = shape.reduce((a, b) => a * b, 1);
  if (outer * along * inner * columns !== total)
    throw new RangeError(`noise layout ${JSON.stringify(layout)} does not cover shape [${shape.join(', ')}]`);
  const quads = Math.ceil(columns / 4);
  const blocks = outer * along * inner * quads;
  const { grid, index } = linearGrid(Math.ceil(blocks / NOISE_GROUP));
  const sd = Math.fround(std);
  const code = /* wgsl */ `
${RUN_STRUCT}
@group(0) @binding(0) var<storage, read_write> out: array<f32>;
@group(1) @binding(0) var<uniform> run: Run;
${PHILOX_WGSL}
@compute @workgroup_size(${NOISE_GROUP})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lane: u32) {
  let block = ${index} * ${NOISE_GROUP}u + lane;
  if (block >= ${blocks}u) { return; }
  let quad = block % ${quads}u;
  let row = block / ${quads}u;
  let i = row % ${inner}u;
  let a = (row / ${inner}u) % ${along}u;
  let o = row / ${inner * along}u;
  let q = (o * ${perSample}u + a % ${perSample}u) * ${inner}u + i;
  let g = gaussianBlock(vec4<u32>(quad, q, run.firstSample + a / ${perSample}u, 0u), vec2<u32>(${seed >>> 0}u, 0u))${sd === 1 ? '' : ` * ${f32Literal(sd)}`};
  let at = row * ${columns}u + quad * 4u;
  for (var l = 0u; l < min(4u, ${columns}u - quad * 4u); l++) { out[at + l] = g[l]; }
}
`;
  return { code, inputs: 0, grid, run: true };
}
