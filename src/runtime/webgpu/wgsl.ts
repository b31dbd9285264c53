/**
 * WGSL building blocks shared by the runtime's kernels: storage types per dtype, literals,
 * the folded 1-D grid and broadcast index arithmetic with shapes baked in as constants.
 */
import { type DType, numel, type Shape, strides } from '../../graph/shape.js';

/** The most workgroups a grid may have along one dimension. */
export const MAX_GROUPS = 65535;

/** How a dtype is stored: floats as f32, integers as i32 (int64 truncated), bools as u32 0/1. */
export const storageType = (d: DType): 'f32' | 'i32' | 'u32' =>
  d === 'float32' ? 'f32' : d === 'bool' ? 'u32' : 'i32';

/** How a dtype's values are held in registers. */
export const valueType = (d: DType): 'f32' | 'i32' | 'bool' =>
  d === 'float32' ? 'f32' : d === 'bool' ? 'bool' : 'i32';

/** A stored word read as a register value. */
export const load = (d: DType, word: string): string => (d === 'bool' ? `(${word} != 0u)` : word);
/** A register value as a stored word. */
export const store = (d: DType, v: string): string => (d === 'bool' ? `select(0u, 1u, ${v})` : v);

/** The largest finite float32: WGSL has no constant ±∞, so reductions start from ∓ this. */
export const F32_MAX = 3.4028234663852886e38;

/**
 * `v` as a WGSL literal of `d`'s register type (the float32 nearest `v`). WGSL constants
 * cannot be ±∞ or NaN: such values are bound as buffers instead (`isLiteral`).
 */
export function literal(v: number, d: DType): string {
  if (d === 'bool') return v ? 'true' : 'false';
  if (d !== 'float32') return `i32(${Math.trunc(v) | 0})`;
  const f = Math.fround(v);
  if (!Number.isFinite(f)) throw new Error(`internal: no WGSL literal for ${v}`);
  if (f === 0 || Math.abs(f) >= 1e-30) return `f32(${f === 0 ? '0.0' : String(f)})`;
  return `bitcast<f32>(0x${new Uint32Array(Float32Array.of(f).buffer)[0]!.toString(16)}u)`;
}

export const isLiteral = (v: number): boolean => Number.isFinite(Math.fround(v));

/**
 * How a kernel reads its operand: from one bound buffer, or by computing a fused elementwise
 * chain from several (elementwise.ts `fusedOperand`). `inputs`: the storage types it binds
 * first; `code`: declarations it needs; `at(i)`: the WGSL value at flat index `i`.
 */
export interface Operand {
  inputs: readonly string[];
  code: string;
  at(i: string): string;
}

/** The operand of a kernel that reads one bound buffer of `d`. */
export const bufferOperand = (d: DType): Operand => ({
  inputs: [storageType(d)],
  code: '',
  at: (i) => load(d, `in0[${i}]`),
});

/** The bindings and declarations of a kernel that reads `x` and writes a `d` output. */
export const operandHead = (x: Operand, d: DType): string =>
  `${bindings(x.inputs, storageType(d))}\n${x.code}`;

/** Storage bindings: inputs read-only at 0..n-1, the output read_write at n. */
export function bindings(inputs: readonly string[], output: string): string {
  const ins = inputs.map((t, k) => `@group(0) @binding(${k}) var<storage, read> in${k}: array<${t}>;`);
  return [
    ...ins,
    `@group(0) @binding(${inputs.length}) var<storage, read_write> out: array<${output}>;`,
  ].join('\n');
}

/** A grid of `groups` workgroups folded into x and y (each ≤ 65,535). */
export function grid(groups: number): [number, number, number] {
  const x = Math.max(1, Math.min(groups, MAX_GROUPS));
  return [x, Math.ceil(groups / x), 1];
}

/** WGSL: the linear workgroup index `wg` of a grid made by `grid(groups)`. */
export const groupIndex = (groups: number): string => `let wg = wid.y * ${grid(groups)[0]}u + wid.x;`;

/**
 * An elementwise kernel's frame: one thread per element of `n`, `i` its index; `body` runs
 * for i < n. `workgroup` threads per group.
 */
export function perElement(n: number, head: string, body: string, workgroup = 256) {
  const groups = Math.ceil(n / workgroup);
  const code = `${head}
@compute @workgroup_size(${workgroup})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${groupIndex(groups)}
  let i = wg * ${workgroup}u + lid;
  if (i >= ${n}u) { return; }
${body}
}
`;
  return { code, grid: grid(groups) };
}

/**
 * WGSL: the offset into a tensor of shape `from` that broadcasts into `to`, of the element at
 * flat index `i` of `to`. Runs of axes that are all broadcast (or all not) are merged first.
 */
export function broadcastOffset(to: Shape, from: Shape, i: string): string {
  if (numel(from) === numel(to)) return i;
  if (numel(from) === 1) return '0u';
  const lead = to.length - from.length;
  // merged runs: [size in `to`, whether `from` has it]
  const runs: [number, boolean][] = [];
  to.forEach((d, k) => {
    if (d === 1) return;
    const has = (from[k - lead] ?? 1) !== 1;
    const last = runs[runs.length - 1];
    if (last && last[1] === has) last[0] *= d;
    else runs.push([d, has]);
  });
  const outStrides = strides(runs.map((r) => r[0]));
  const inStrides = strides(runs.map((r) => (r[1] ? r[0] : 1)));
  const terms: string[] = [];
  runs.forEach(([size, has], k) => {
    if (!has) return;
    const div = outStrides[k] === 1 ? i : `(${i} / ${outStrides[k]}u)`;
    const coord = k === 0 ? div : `(${div} % ${size}u)`;
    terms.push(inStrides[k] === 1 ? coord : `${coord} * ${inStrides[k]}u`);
  });
  return terms.length ? `(${terms.join(' + ')})` : '0u';
}

/**
 * WGSL statements that split flat index `i` over `shape` and sum `coord·mul` per axis into
 * `name` (a `var` it declares): the offset of a gathered element. Axes of size 1 are skipped.
 */
export function offsetOf(name: string, i: string, shape: Shape, mul: readonly number[]): string {
  const st = strides(shape);
  const terms: string[] = [];
  shape.forEach((d, k) => {
    if (d === 1 || mul[k] === 0) return;
    const div = st[k] === 1 ? i : `(${i} / ${st[k]}u)`;
    const coord = k === 0 ? div : `(${div} % ${d}u)`;
    terms.push(mul[k] === 1 ? coord : `${coord} * ${mul[k]}u`);
  });
  return `let ${name} = ${terms.length ? terms.join(' + ') : '0u'};`;
}
