/**
 * Movement ops as index-mapping kernels: each thread computes one output element's source
 * offset (transpose, slice, pad, gather), or one input element's destination (a concat piece).
 * scatterAdd adds rows with a compare-and-swap loop on the float's bits (WGSL has no float
 * atomics), after a kernel that zeroes the output.
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import { type DType, numel, type Shape, strides } from '../../graph/shape.js';
import {
  bindings,
  bufferOperand,
  type Operand,
  offsetOf,
  operandHead,
  perElement,
  storageType,
  store,
} from './wgsl.js';

const copyHead = (d: DType, inputs = 1) =>
  bindings(Array<string>(inputs).fill(storageType(d)), storageType(d));

export function transposeKernel(
  shape: Shape,
  perm: readonly number[],
  d: DType,
  x: Operand = bufferOperand(d),
): KernelSpec {
  const st = strides(shape);
  const outShape = perm.map((p) => shape[p]!);
  const body = `  ${offsetOf(
    'src',
    'i',
    outShape,
    perm.map((p) => st[p]!),
  )}
  out[i] = ${store(d, x.at('src'))};`;
  return { ...perElement(numel(outShape), operandHead(x, d), body), inputs: x.inputs.length };
}

export function sliceKernel(
  shape: Shape,
  starts: readonly number[],
  outShape: Shape,
  d: DType,
  x: Operand = bufferOperand(d),
): KernelSpec {
  const st = strides(shape);
  const first = starts.reduce((s, v, k) => s + v * st[k]!, 0);
  const body = `  ${offsetOf('src', 'i', outShape, st)}
  out[i] = ${store(d, x.at(`src + ${first}u`))};`;
  return { ...perElement(numel(outShape), operandHead(x, d), body), inputs: x.inputs.length };
}

/** Zero padding: each output element reads its input element, or 0 outside it. */
export function padKernel(shape: Shape, before: readonly number[], outShape: Shape, d: DType): KernelSpec {
  const ost = strides(outShape);
  const ist = strides(shape);
  const tests: string[] = [];
  const terms: string[] = [];
  outShape.forEach((n, k) => {
    if (n === 1) return;
    const c = `c${k}`;
    tests.push(`  let ${c} = i32((i / ${ost[k]}u) % ${n}u) - ${before[k]};`);
    terms.push(`u32(${c}) * ${ist[k]}u`);
    tests.push(`  if (${c} < 0 || ${c} >= ${shape[k]}) { out[i] = ${storageType(d)}(0); return; }`);
  });
  const body = `${tests.join('\n')}
  out[i] = in0[${terms.length ? terms.join(' + ') : '0u'}];`;
  return { ...perElement(numel(outShape), copyHead(d), body), inputs: 1 };
}

/** One input of a concat, copied into its block of the output (at `at` along `axis`). */
export function concatPieceKernel(
  shape: Shape,
  axis: number,
  at: number,
  outShape: Shape,
  d: DType,
): KernelSpec {
  const ost = strides(outShape);
  const body = `  ${offsetOf('dst', 'i', shape, ost)}
  out[dst + ${at * ost[axis]!}u] = in0[i];`;
  return { ...perElement(numel(shape), copyHead(d), body), inputs: 1 };
}

/** data[..., indices, ...] along `axis`; negative indices count from the end. */
export function gatherKernel(shape: Shape, indices: Shape, axis: number, d: DType): KernelSpec {
  const inner = numel(shape.slice(axis + 1));
  const n = shape[axis]!;
  const m = numel(indices);
  const out = numel(shape.slice(0, axis)) * m * inner;
  const body = `  let q = i % ${inner}u;
  let k = (i / ${inner}u) % ${m}u;
  let p = i / ${inner * m}u;
  var j = in1[k];
  if (j < 0) { j += ${n}; }
  out[i] = in0[(p * ${n}u + u32(j)) * ${inner}u + q];`;
  return { ...perElement(out, bindings([storageType(d), 'i32'], storageType(d)), body), inputs: 2 };
}

/** Writes zeros over the output (before a scatterAdd). */
export function zerosKernel(n: number): KernelSpec {
  return { ...perElement(n, bindings([], 'u32'), '  out[i] = 0u;'), inputs: 0 };
}

/** out[indices[k], :] += updates[k, :] for a zeroed float output of `rows` rows. */
export function scatterAddKernel(indices: number, inner: number, rows: number): KernelSpec {
  const head = `@group(0) @binding(0) var<storage, read> in0: array<i32>;
@group(0) @binding(1) var<storage, read> in1: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<atomic<u32>>;`;
  const body = `  let k = i / ${inner}u;
  var j = in0[k];
  if (j < 0) { j += ${rows}; }
  let at = u32(j) * ${inner}u + i % ${inner}u;
  let add = in1[i];
  var old = atomicLoad(&out[at]);
  loop {
    let r = atomicCompareExchangeWeak(&out[at], old, bitcast<u32>(bitcast<f32>(old) + add));
    if (r.exchanged) { break; }
    old = r.old_value;
  }`;
  return { ...perElement(indices * inner, head, body), inputs: 2 };
}
