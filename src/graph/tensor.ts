/**
 * Symbolic tensors. A Tensor is a node of a DAG: an op from `OPS`, its input tensors and
 * attributes, with shape and dtype inferred when it is made (errors name the op and shapes).
 * Leaves are named inputs (fed at run time), params (weights with a current value that is
 * fed or baked in at compile time) and constants.
 */
import { type HostArray, scalarArray } from './ndarray.js';
import { type AttrsOf, type GpuKernel, type HostKernel, OPS, type OpName } from './ops.js';
import { type DType, fmtShape, GraphError, numel, type Shape } from './shape.js';

let nextId = 0;

export type TensorLike = Tensor | number;

export class Tensor {
  readonly id = nextId++;
  constructor(
    readonly op: OpName,
    readonly inputs: readonly Tensor[],
    readonly attrs: unknown,
    readonly shape: Shape,
    readonly dtype: DType,
  ) {}

  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return numel(this.shape);
  }

  add(b: TensorLike): Tensor {
    return apply('add', [this, lift(b, this)], {});
  }
  sub(b: TensorLike): Tensor {
    return apply('sub', [this, lift(b, this)], {});
  }
  mul(b: TensorLike): Tensor {
    return apply('mul', [this, lift(b, this)], {});
  }
  div(b: TensorLike): Tensor {
    return apply('div', [this, lift(b, this)], {});
  }
  pow(b: TensorLike): Tensor {
    return apply('pow', [this, lift(b, this)], {});
  }
  maximum(b: TensorLike): Tensor {
    return apply('maximum', [this, lift(b, this)], {});
  }
  minimum(b: TensorLike): Tensor {
    return apply('minimum', [this, lift(b, this)], {});
  }
  less(b: TensorLike): Tensor {
    return apply('less', [this, lift(b, this)], {});
  }
  greater(b: TensorLike): Tensor {
    return apply('greater', [this, lift(b, this)], {});
  }
  equal(b: TensorLike): Tensor {
    return apply('equal', [this, lift(b, this)], {});
  }
  neg(): Tensor {
    return apply('neg', [this], {});
  }
  exp(): Tensor {
    return apply('exp', [this], {});
  }
  log(): Tensor {
    return apply('log', [this], {});
  }
  sqrt(): Tensor {
    return apply('sqrt', [this], {});
  }
  abs(): Tensor {
    return apply('abs', [this], {});
  }
  sign(): Tensor {
    return apply('sign', [this], {});
  }
  tanh(): Tensor {
    return apply('tanh', [this], {});
  }
  erf(): Tensor {
    return apply('erf', [this], {});
  }
  /** Round half to even (as ONNX Round); gradient passes straight through. */
  round(): Tensor {
    return apply('round', [this], {});
  }
  /** Largest integer ≤ x; gradient passes straight through. */
  floor(): Tensor {
    return apply('floor', [this], {});
  }
  /** Identity whose gradient is zero. */
  detach(): Tensor {
    return apply('stopGradient', [this], {});
  }
  /**
   * Round half to even and clip to [−levels, levels] (a converter's code; see ops.ts).
   * `inRange`: every code is known to lie within ±levels already, so the clip is left out.
   */
  quantize(levels: number, inRange = false): Tensor {
    return apply('quantize', [this], { levels, inRange });
  }
  /** Clip to ±range (a positive tensor broadcast into this one), with the learned-range gradient (ops.ts). */
  rangeClip(range: Tensor): Tensor {
    return apply('rangeClip', [this, range], {});
  }
  clip(min: number, max: number): Tensor {
    return apply('clip', [this], { min, max });
  }
  cast(to: DType): Tensor {
    return to === this.dtype ? this : apply('cast', [this], { to });
  }
  sum(axes?: number | readonly number[], keepdims = false): Tensor {
    return apply('sum', [this], { axes: axesOf(this, axes), keepdims });
  }
  mean(axes?: number | readonly number[], keepdims = false): Tensor {
    return apply('mean', [this], { axes: axesOf(this, axes), keepdims });
  }
  max(axes?: number | readonly number[], keepdims = false): Tensor {
    return apply('max', [this], { axes: axesOf(this, axes), keepdims });
  }
  min(axes?: number | readonly number[], keepdims = false): Tensor {
    return apply('min', [this], { axes: axesOf(this, axes), keepdims });
  }
  /** One dim may be -1 (inferred). */
  reshape(shape: Shape): Tensor {
    return apply('reshape', [this], { shape: inferReshape(this, shape) });
  }
  /** Without `perm`, swaps the last two axes. */
  transpose(perm?: readonly number[]): Tensor {
    const p = perm ? [...perm] : [...this.shape.keys()];
    if (!perm && this.rank >= 2) [p[this.rank - 2], p[this.rank - 1]] = [this.rank - 1, this.rank - 2];
    return apply('transpose', [this], { perm: p });
  }
  expand(shape: Shape): Tensor {
    return apply('expand', [this], { shape: [...shape] });
  }
  /** Takes [start, end) along `axis` (negative indices count from the end). */
  slice(axis: number, start: number, end: number): Tensor {
    const ax = axis < 0 ? axis + this.rank : axis;
    const d = this.shape[ax] ?? 0;
    const clampIdx = (i: number) => Math.min(Math.max(i < 0 ? i + d : i, 0), d);
    const starts = this.shape.map(() => 0);
    const ends = [...this.shape];
    starts[ax] = clampIdx(start);
    ends[ax] = clampIdx(end);
    return apply('slice', [this], { starts, ends });
  }
  matmul(b: Tensor): Tensor {
    return apply('matmul', [this, b], {});
  }
  /** Rows of this table at `indices` along `axis` (embedding lookup for axis 0). */
  gather(indices: Tensor, axis = 0): Tensor {
    return apply('gather', [this, indices], { axis: axis < 0 ? axis + this.rank : axis });
  }
  softmax(axis = -1): Tensor {
    return apply('softmax', [this], { axis: axis < 0 ? axis + this.rank : axis });
  }
  logSoftmax(axis = -1): Tensor {
    return apply('logSoftmax', [this], { axis: axis < 0 ? axis + this.rank : axis });
  }

  toString(): string {
    return `Tensor(${this.op}#${this.id}, [${this.shape}], ${this.dtype})`;
  }
}

/** Makes a node, inferring its shape and dtype from the op's rule. */
export function apply<K extends OpName>(op: K, inputs: readonly Tensor[], attrs: AttrsOf<K>): Tensor {
  const def = OPS[op];
  if (!def) throw new GraphError(String(op), 'unknown op');
  if (def.arity !== 'variadic' && inputs.length !== def.arity) {
    throw new GraphError(op, `expects ${def.arity} inputs, got ${inputs.length}`);
  }
  // biome-ignore lint/suspicious/noExplicitAny: the table is indexed by a union of ops
  const info = (def.infer as any)(inputs, attrs) as { shape: Shape; dtype: DType };
  return new Tensor(op, inputs, attrs, info.shape, info.dtype);
}

function lift(b: TensorLike, like: Tensor): Tensor {
  return typeof b === 'number' ? scalar(b, like.dtype) : b;
}

function axesOf(t: Tensor, axes?: number | readonly number[]): number[] {
  const list = axes === undefined ? [...t.shape.keys()] : typeof axes === 'number' ? [axes] : axes;
  const out = list.map((a) => (a < 0 ? a + t.rank : a));
  for (const a of out) {
    if (!Number.isInteger(a) || a < 0 || a >= t.rank) {
      throw new GraphError('reduce', `axis ${a} out of range for shape ${fmtShape(t.shape)}`);
    }
  }
  return [...new Set(out)].sort((x, y) => x - y);
}

function inferReshape(t: Tensor, shape: Shape): number[] {
  const out = [...shape];
  const free = out.indexOf(-1);
  if (free >= 0) {
    const known = out.reduce((a, d, i) => (i === free ? a : a * d), 1);
    if (known === 0 || t.size % known !== 0) {
      throw new GraphError('reshape', `cannot reshape ${fmtShape(t.shape)} to ${fmtShape(shape)}`);
    }
    out[free] = t.size / known;
  }
  return out;
}

// ---- leaves -------------------------------------------------------------------------

/** A named input fed at run time. */
export const input = (name: string, shape: Shape, dtype: DType = 'float32'): Tensor =>
  apply('input', [], { name, shape: [...shape], dtype });

/**
 * A weight with a current value. Compiled graphs read `value` at every run when params are
 * fed, so an optimiser can update it in place without recompiling.
 */
export const param = (name: string, value: HostArray): Tensor => apply('param', [], { name, value });

export const constant = (value: HostArray): Tensor => apply('constant', [], { value });

export const scalar = (v: number, dtype: DType = 'float32'): Tensor => constant(scalarArray(v, dtype));

export const where = (cond: Tensor, a: TensorLike, b: TensorLike): Tensor => {
  const like = typeof a === 'number' ? (typeof b === 'number' ? undefined : b) : a;
  const dt = like?.dtype ?? 'float32';
  const ta = typeof a === 'number' ? scalar(a, dt) : a;
  const tb = typeof b === 'number' ? scalar(b, dt) : b;
  return apply('where', [cond, ta, tb], {});
};

/**
 * c ? a : b for one boolean c: what only the branch not taken needs is never computed (ONNX
 * `If`), so an expensive refinement can be skipped at run time when a test says so.
 */
export function cond(c: Tensor, a: Tensor, b: Tensor): Tensor {
  // a view as a branch's result would be copied out of the If: take the view after it instead
  const [ia, ib] = [a.inputs[0], b.inputs[0]];
  if (a.op === 'reshape' && b.op === 'reshape' && ia && ib && ia.dtype === ib.dtype) {
    if (ia.shape.length === ib.shape.length && ia.shape.every((d, i) => d === ib.shape[i]))
      return cond(c, ia, ib).reshape(a.shape);
  }
  return apply('cond', [c, a, b], {});
}

export const concat = (xs: readonly Tensor[], axis: number): Tensor =>
  apply('concat', xs, { axis: axis < 0 ? axis + (xs[0]?.rank ?? 0) : axis });

export const pad = (x: Tensor, before: readonly number[], after: readonly number[]): Tensor =>
  apply('pad', [x], { before: [...before], after: [...after] });

/** Fresh N(mean, std²) values at every run; the same `seed` gives the same stream. */
export const randomNormal = (shape: Shape, opts: { seed: number; mean?: number; std?: number }) =>
  apply('randomNormal', [], { shape: [...shape], seed: opts.seed, mean: opts.mean ?? 0, std: opts.std ?? 1 });

/**
 * N(0, std²) values keyed by the sample (util/philox.ts): axis `batchAxis` (not the last) holds
 * the run's `batch` samples one after another, and each element's value depends on the seed, its
 * sample's index in the data set (the run's first sample + its place in the batch) and its place
 * within the sample only.
 */
export const noise = (
  shape: Shape,
  opts: { seed: number; std?: number; batchAxis: number; batch: number },
): Tensor =>
  apply('noise', [], {
    shape: [...shape],
    seed: opts.seed,
    std: opts.std ?? 1,
    batchAxis: opts.batchAxis,
    batch: opts.batch,
  });

/** Fresh U[low, high) values at every run; the same `seed` gives the same stream. */
export const randomUniform = (shape: Shape, opts: { seed: number; low?: number; high?: number }) =>
  apply('randomUniform', [], {
    shape: [...shape],
    seed: opts.seed,
    low: opts.low ?? 0,
    high: opts.high ?? 1,
  });

/**
 * The output of a kernel run on the host between ONNX graphs (runtime/segments.ts): `key`
 * identifies the kernel and its configuration, `run` computes the output from the inputs' values.
 * `transient`: the output's buffer is not kept for the next run to reuse (a large value made
 * afresh at every run, such as cells programmed per run, is then freed once read).
 */
export const hostCall = (
  key: string,
  inputs: readonly Tensor[],
  shape: Shape,
  run: HostKernel,
  dtype: DType = 'float32',
  transient = false,
  gpu?: GpuKernel,
): Tensor =>
  apply('host', inputs, { key, shape: [...shape], dtype, run, transient, ...(gpu ? { gpu } : {}) });
