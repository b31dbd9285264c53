/**
 * The graph's `noise` op drawn inside the kernel that reads it: a WGSL function of an element's
 * flat index that finds its Philox counter and lane as util/philox.ts fillNoise does and runs
 * philox.ts's generator, so no noise tensor is filled on the host, uploaded or stored.
 */
import { type KernelSpec, RUN_STRUCT } from '../../graph/gpu-kernel.js';
import type { Tensor } from '../../graph/tensor.js';
import { noiseLayout } from '../../util/philox.js';
import { f32Literal, noiseKernel } from './philox.js';

/** The per-run uniform, as a kernel that draws noise declares it. */
export const RUN_UNIFORM = `${RUN_STRUCT}\n@group(1) @binding(0) var<uniform> run: Run;`;

interface NoiseAttrs {
  seed: number;
  std: number;
  batchAxis: number;
  batch: number;
}

/** A kernel drawing a `noise` leaf into its buffer, for readers that do not draw it themselves. */
export function noiseBuffer(leaf: Tensor): KernelSpec {
  const a = leaf.attrs as NoiseAttrs;
  return noiseKernel(leaf.shape, noiseLayout(leaf.shape, a.batchAxis, a.batch), a.seed, a.std);
}

/**
 * WGSL functions of a `noise` leaf: `<name>(e) -> f32`, element e's value (one Philox block and
 * the one radius and angle its lane needs), and `<name>Block(e) -> vec4<f32>`, the four values of
 * the block that starts at element e (e's column a multiple of 4), for kernels that compute four
 * neighbouring elements per thread. Both read `run.firstSample` and need PHILOX_WGSL.
 */
export function noiseFunctions(leaf: Tensor, name: string): string {
  const a = leaf.attrs as NoiseAttrs;
  const { along, perSample, inner, columns } = noiseLayout(leaf.shape, a.batchAxis, a.batch);
  const sd = Math.fround(a.std);
  const scaled = sd === 1 ? '' : ` * ${f32Literal(sd)}`;
  const key = `vec2<u32>(${a.seed >>> 0}u, 0u)`;
  // element (o, a, i, c): lane c mod 4 of the block at (⌊c/4⌋, q, firstSample + ⌊a/perSample⌋, 0)
  const counter = `  let c = e % ${columns}u;
  let row = e / ${columns}u;
  let i = row % ${inner}u;
  let a = (row / ${inner}u) % ${along}u;
  let q = ((row / ${inner * along}u) * ${perSample}u + a % ${perSample}u) * ${inner}u + i;
  let counter = vec4<u32>(c >> 2u, q, run.firstSample + a / ${perSample}u, 0u);`;
  return `fn ${name}(e: u32) -> f32 {
${counter}
  let x = philox(counter, ${key});
  let high = (c & 2u) != 0u;
  let r = boxMullerRadius(select(x.x, x.z, high));
  let t = boxMullerAngle(select(x.y, x.w, high));
  return r * select(t.x, t.y, (c & 1u) != 0u)${scaled};
}
fn ${name}Block(e: u32) -> vec4<f32> {
${counter}
  return gaussianBlock(counter, ${key})${scaled};
}`;
}
