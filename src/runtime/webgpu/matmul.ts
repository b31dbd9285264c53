/**
 * Batched matmul [..., M, K] × [..., K, N] → [..., M, N] with broadcast batch dims: 16×16
 * output tiles, one workgroup each, K walked in 16-wide tiles staged in workgroup memory.
 * The grid is the flat (batch, row tile, column tile) index folded into x and y.
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import { numel, type Shape } from '../../graph/shape.js';
import { bindings, broadcastOffset, grid, groupIndex } from './wgsl.js';

const T = 16;

export function matmulKernel(aShape: Shape, bShape: Shape, outShape: Shape): KernelSpec {
  const r = outShape.length;
  const [m, n] = [outShape[r - 2]!, outShape[r - 1]!];
  const k = aShape[aShape.length - 1]!;
  const batchShape = outShape.slice(0, -2);
  const batch = numel(batchShape);
  const tilesN = Math.ceil(n / T);
  const tilesM = Math.ceil(m / T);
  const groups = batch * tilesM * tilesN;
  const code = `${bindings(['f32', 'f32'], 'f32')}
var<workgroup> ta: array<f32, ${T * T}>;
var<workgroup> tb: array<f32, ${T * T}>;
@compute @workgroup_size(${T}, ${T})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${groupIndex(groups)}
  if (wg >= ${groups}u) { return; }
  let z = wg / ${tilesM * tilesN}u;
  let row = (wg / ${tilesN}u) % ${tilesM}u * ${T}u + lid.y;
  let col = wg % ${tilesN}u * ${T}u + lid.x;
  let a0 = ${broadcastOffset(batchShape, aShape.slice(0, -2), 'z')} * ${m * k}u;
  let b0 = ${broadcastOffset(batchShape, bShape.slice(0, -2), 'z')} * ${k * n}u;
  var acc = 0.0;
  for (var t = 0u; t < ${k}u; t += ${T}u) {
    let ak = t + lid.x;
    let bk = t + lid.y;
    ta[lid.y * ${T}u + lid.x] = select(0.0, in0[a0 + row * ${k}u + ak], row < ${m}u && ak < ${k}u);
    tb[lid.y * ${T}u + lid.x] = select(0.0, in1[b0 + bk * ${n}u + col], bk < ${k}u && col < ${n}u);
    workgroupBarrier();
    for (var q = 0u; q < ${T}u; q++) { acc += ta[lid.y * ${T}u + q] * tb[q * ${T}u + lid.x]; }
    workgroupBarrier();
  }
  if (row < ${m}u && col < ${n}u) { out[z * ${m * n}u + row * ${n}u + col] = acc; }
}
`;
  return { code, inputs: 2, grid: grid(groups) };
}
