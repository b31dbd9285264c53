/**
 * Reductions over any axes (sum, mean, max, min) and the row-wise ops softmax, logSoftmax and
 * layerNorm. Long reductions take one workgroup per output value (a strided loop per thread,
 * then a tree in workgroup memory); short ones one thread per output value. The row-wise ops
 * take a workgroup per row, which holds the row in its threads' registers between passes.
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import { type DType, numel, type Shape, strides } from '../../graph/shape.js';
import {
  bindings,
  bufferOperand,
  F32_MAX,
  grid,
  groupIndex,
  literal,
  type Operand,
  offsetOf,
  operandHead,
  perElement,
  storageType,
} from './wgsl.js';

export type ReduceKind = 'sum' | 'mean' | 'max' | 'min';

/** Reductions at least this long get a workgroup per output value. */
const LONG = 128;

const combine = (kind: ReduceKind, a: string, b: string): string =>
  kind === 'max' ? `max(${a}, ${b})` : kind === 'min' ? `min(${a}, ${b})` : `${a} + ${b}`;

const initial = (kind: ReduceKind, d: DType): string =>
  kind === 'max'
    ? d === 'float32'
      ? literal(-F32_MAX, d)
      : 'i32(-2147483648)'
    : kind === 'min'
      ? d === 'float32'
        ? literal(F32_MAX, d)
        : 'i32(2147483647)'
      : literal(0, d);

/**
 * A tree reduction of `v` (each thread's partial) over a workgroup of `size` threads into
 * `sh[0]`; `op(a, b)` combines two partials.
 */
function treeReduce(size: number, v: string, op: (a: string, b: string) => string, sh = 'sh'): string {
  const steps: string[] = [`  ${sh}[lid] = ${v};`, '  workgroupBarrier();'];
  for (let s = size / 2; s >= 1; s /= 2) {
    steps.push(
      `  if (lid < ${s}u) { ${sh}[lid] = ${op(`${sh}[lid]`, `${sh}[lid + ${s}u]`)}; }`,
      '  workgroupBarrier();',
    );
  }
  return steps.join('\n');
}

/** The frame of a kernel with one workgroup of `size` threads per row `row` of `rows`. */
function perRow(rows: number, size: number, head: string, body: string) {
  const code = `${head}
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${groupIndex(rows)}
  let row = wg;
  if (row >= ${rows}u) { return; }
${body}
}
`;
  return { code, grid: grid(rows) };
}

/** Reduces `shape` over `axes` (sorted, distinct); the output has the kept axes in order. */
export function reduceKernel(
  kind: ReduceKind,
  shape: Shape,
  axes: readonly number[],
  dtype: DType,
  x: Operand = bufferOperand(dtype),
): KernelSpec {
  const st = strides(shape);
  const keptShape = shape.filter((_, k) => !axes.includes(k));
  const keptMul = st.filter((_, k) => !axes.includes(k));
  const redShape = axes.map((a) => shape[a]!);
  const redMul = axes.map((a) => st[a]!);
  const outs = numel(keptShape);
  const count = numel(redShape);
  const t = storageType(dtype);
  const head = operandHead(x, dtype);
  const finish = (v: string) => (kind === 'mean' ? `${v} / ${literal(count, dtype)}` : v);
  const op = (a: string, b: string) => combine(kind, a, b);
  if (count >= LONG) {
    const size = 256;
    const body = `  ${offsetOf('base', 'row', keptShape, keptMul)}
  var acc = ${initial(kind, dtype)};
  for (var r = lid; r < ${count}u; r += ${size}u) {
    ${offsetOf('off', 'r', redShape, redMul)}
    acc = ${op('acc', x.at('base + off'))};
  }
${treeReduce(size, 'acc', op)}
  if (lid == 0u) { out[row] = ${finish('sh[0]')}; }`;
    return {
      ...perRow(outs, size, `${head}\nvar<workgroup> sh: array<${t}, ${size}>;`, body),
      inputs: x.inputs.length,
    };
  }
  const body = `  ${offsetOf('base', 'i', keptShape, keptMul)}
  var acc = ${initial(kind, dtype)};
  for (var r = 0u; r < ${count}u; r++) {
    ${offsetOf('off', 'r', redShape, redMul)}
    acc = ${op('acc', x.at('base + off'))};
  }
  out[i] = ${finish('acc')};`;
  return { ...perElement(outs, head, body, 64), inputs: x.inputs.length };
}

/** Threads per row for rows of `len` elements. */
const rowThreads = (len: number): number => (len <= 256 ? 64 : 256);

/** Rows along `axis`: how many, and the WGSL offset of row `row`'s first element and its stride. */
function rowsAlong(shape: Shape, axis: number) {
  const st = strides(shape);
  const outer = shape.filter((_, k) => k !== axis);
  const base = offsetOf(
    'base',
    'row',
    outer,
    st.filter((_, k) => k !== axis),
  );
  return { rows: numel(outer), len: shape[axis]!, stride: st[axis]!, base };
}

/**
 * WGSL running `body` for each element `k` of a row of `len` that thread `lid` of `size` holds
 * (k = lid, lid + size, …), as `v[r]` of its registers `v`: rows are read from memory once.
 */
const own = (len: number, size: number, body: string): string =>
  `  for (var r = 0u; r < ${Math.ceil(len / size)}u; r++) {
    let k = lid + r * ${size}u;
    if (k < ${len}u) { ${body} }
  }`;

/** softmax (or logSoftmax) along `axis`: max, then Σ exp, then the values. */
export function softmaxKernel(
  shape: Shape,
  axis: number,
  log: boolean,
  x: Operand = bufferOperand('float32'),
): KernelSpec {
  const { rows, len, stride, base } = rowsAlong(shape, axis);
  const size = rowThreads(len);
  const at = `base + k * ${stride}u`;
  const body = `  ${base}
  var v: array<f32, ${Math.ceil(len / size)}>;
  var mx = ${literal(-F32_MAX, 'float32')};
${own(len, size, `v[r] = ${x.at(at)}; mx = max(mx, v[r]);`)}
${treeReduce(size, 'mx', (a, b) => `max(${a}, ${b})`)}
  let m = sh[0];
  workgroupBarrier();
  var acc = 0.0;
${own(len, size, 'v[r] = v[r] - m; acc += exp(v[r]);')}
${treeReduce(size, 'acc', (a, b) => `${a} + ${b}`)}
  let s = sh[0];
${own(len, size, `out[${at}] = ${log ? 'v[r] - log(s)' : 'exp(v[r]) / s'};`)}`;
  const head = `${operandHead(x, 'float32')}\nvar<workgroup> sh: array<f32, ${size}>;`;
  return { ...perRow(rows, size, head, body), inputs: x.inputs.length };
}

/** layerNorm over the last axis: mean, then variance about it (two passes, as the reference). */
export function layerNormKernel(shape: Shape, eps: number): KernelSpec {
  const d = shape[shape.length - 1]!;
  const rows = numel(shape) / d;
  const size = rowThreads(d);
  const body = `  let base = row * ${d}u;
  var v: array<f32, ${Math.ceil(d / size)}>;
  var acc = 0.0;
${own(d, size, 'v[r] = in0[base + k]; acc += v[r];')}
${treeReduce(size, 'acc', (a, b) => `${a} + ${b}`)}
  let mu = sh[0] / ${d}.0;
  workgroupBarrier();
  var sq = 0.0;
${own(d, size, 'let c = v[r] - mu; sq += c * c;')}
${treeReduce(size, 'sq', (a, b) => `${a} + ${b}`)}
  let rstd = 1.0 / sqrt(sh[0] / ${d}.0 + ${literal(eps, 'float32')});
${own(d, size, 'out[base + k] = (v[r] - mu) * rstd * in1[k] + in2[k];')}`;
  const head = `${bindings(['f32', 'f32', 'f32'], 'f32')}\nvar<workgroup> sh: array<f32, ${size}>;`;
  return { ...perRow(rows, size, head, body), inputs: 3 };
}
