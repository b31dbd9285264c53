/**
 * The closed set of primitive ops. Each record holds, side by side: the shape/dtype rule,
 * a float64 reference (what tests check ONNX Runtime and gradients against), the
 * vector-Jacobian product, and the lowering to ONNX. Gradients are returned in the op's
 * output shape where an input was broadcast; the autodiff driver reduces them.
 */
import { erf, Rng, roundHalfEven } from '../util/math.js';
import { fillNoise, noiseLayout } from '../util/philox.js';
import type { KernelSpec } from './gpu-kernel.js';
import {
  addBlockRef,
  fromRef,
  type HostArray,
  mapRef,
  matmulRef,
  type RefArray,
  reduceRef,
  ref,
  sliceRef,
  toRef,
  transposeRef,
  zipRef,
} from './ndarray.js';
import { ONNX_DTYPE } from './onnx-schema.js';
import {
  broadcastShapes,
  checkShape,
  type DType,
  fmtShape,
  GraphError,
  numel,
  type Shape,
  sameShape,
} from './shape.js';
import { apply, pad, scalar, type Tensor, where } from './tensor.js';

/** An ONNX attribute value, tagged with its ONNX type. */
export type OnnxAttr =
  | { f: number }
  | { i: number }
  | { s: string }
  | { ints: readonly number[] }
  | { floats: readonly number[] }
  /** A subgraph (ONNX GRAPH attribute), from `Lowering.branch`. */
  | { g: unknown };

/** What an op's lowering may ask of the ONNX emitter. */
export interface Lowering {
  /** Adds a node; returns the name of its (first) output. */
  node(opType: string, inputs: readonly string[], attrs?: Record<string, OnnxAttr>): string;
  /** A 1-D int64 constant (shapes, axes, pads). */
  ints(values: readonly number[]): string;
  /** A scalar constant of a dtype. */
  scalar(value: number, dtype: DType): string;
  /** A constant tensor (initializers are shared by value, dtype and shape). */
  constant(value: HostArray): string;
  /**
   * The subgraph that computes input `index` of the op being lowered (one of its `lazy`
   * inputs): the nodes only that input needs, emitted inside it, outer values read by name.
   */
  branch(index: number): OnnxAttr;
}

type Grads = readonly (Tensor | null)[];

/**
 * A host kernel: input values in, the output value out (float32 unless its op says otherwise).
 * `reuse`: the data of this kernel's output in an earlier run of the same graph, which nothing
 * reads any more; the kernel may write its new output there instead of allocating.
 * `firstSample`: the index in the data set of the run's first sample (for sample-keyed noise).
 */
export type HostKernel = (
  inputs: readonly HostArray[],
  reuse?: HostArray['data'],
  firstSample?: number,
) => HostArray;
/**
 * A host kernel's WebGPU equivalent: its dispatch, given the shapes of its inputs and the WGSL
 * language features the device's WGSL has (`navigator.gpu.wgslLanguageFeatures`).
 */
export type GpuKernel = (inputs: readonly Shape[], wgsl: ReadonlySet<string>) => KernelSpec;
interface Info {
  shape: Shape;
  dtype: DType;
}

export interface OpDef<A> {
  arity: number | 'variadic';
  /** Leaves are named inputs, params and constants: the driver feeds and emits them. */
  leaf?: true;
  /**
   * Inputs computed only when the op needs them: the emitter moves the nodes that nothing
   * else uses into subgraphs (`Lowering.branch`), so ONNX Runtime runs them conditionally.
   */
  lazy?: readonly number[];
  /**
   * Free where its input lives (a view, e.g. Reshape): the emitter keeps it next to its input
   * rather than in a lazy input's subgraph, where ONNX Runtime would copy an outer-scope input.
   */
  view?: true;
  infer(ins: readonly Tensor[], a: A): Info;
  ref(ins: readonly RefArray[], a: A, out: Tensor): RefArray;
  /** null: not differentiable (gradient zero for every input). */
  vjp: ((g: Tensor, ins: readonly Tensor[], out: Tensor, a: A) => Grads) | null;
  lower(o: Lowering, ins: readonly string[], a: A, out: Tensor): string;
}

const def = <A>(d: OpDef<A>): OpDef<A> => d;

// ---- shared rules -------------------------------------------------------------------

function needFloat(op: string, ...ts: readonly Tensor[]): void {
  for (const t of ts) {
    if (t.dtype !== 'float32')
      throw new GraphError(op, `expects float32, got ${t.dtype} ${fmtShape(t.shape)}`);
  }
}

/** The info of a float op whose output is shaped like its input. */
function sameAsFloat(op: string, x: Tensor): Info {
  needFloat(op, x);
  return { shape: x.shape, dtype: x.dtype };
}

function sameDtype(op: string, a: Tensor, b: Tensor): void {
  if (a.dtype !== b.dtype) {
    throw new GraphError(
      op,
      `dtypes differ: ${a.dtype} ${fmtShape(a.shape)} and ${b.dtype} ${fmtShape(b.shape)}`,
    );
  }
}

/** A float elementwise unary op. */
const unary = (
  name: string,
  onnx: string,
  f: (x: number) => number,
  vjp: OpDef<object>['vjp'],
): OpDef<object> =>
  def<object>({
    arity: 1,
    infer: ([x]) => sameAsFloat(name, x!),
    ref: ([x]) => mapRef(x!, f),
    vjp,
    lower: (o, ins) => o.node(onnx, ins),
  });

/**
 * The names of a broadcasting op's inputs, with each constant of lower rank than the output
 * given the output's rank (leading 1s, the same values) when the output's last axis is 1.
 * ONNX Runtime broadcasts a lower-rank constant against such a tensor element by element, which
 * is slow for the many small per-vector tensors of the analog graphs (DAC ranges, gains,
 * saturation tests; see docs/analog-model.md).
 */
function sameRankConstants(o: Lowering, ins: readonly string[], t: Tensor): string[] {
  const rank = t.shape.length;
  if (t.shape[rank - 1] !== 1) return [...ins];
  return t.inputs.map((x, i) => {
    if (x.op !== 'constant' || x.shape.length === rank) return ins[i]!;
    const value = (x.attrs as { value: HostArray }).value;
    return o.constant({ ...value, shape: [...Array(rank - x.shape.length).fill(1), ...x.shape] });
  });
}

/** An elementwise binary op with NumPy broadcasting. */
const binary = (
  name: string,
  onnx: string,
  f: (a: number, b: number) => number,
  vjp: OpDef<object>['vjp'],
  outDtype?: DType,
): OpDef<object> =>
  def<object>({
    arity: 2,
    infer: ([a, b]) => {
      sameDtype(name, a!, b!);
      if (!outDtype && a!.dtype === 'bool') throw new GraphError(name, 'arithmetic on bool tensors');
      return { shape: broadcastShapes(name, a!.shape, b!.shape), dtype: outDtype ?? a!.dtype };
    },
    ref: (ins, _a, out) => zipRef(out.shape, ins, f),
    vjp,
    lower: (o, ins, _a, t) => o.node(onnx, sameRankConstants(o, ins, t)),
  });

interface ReduceAttrs {
  axes: readonly number[];
  keepdims: boolean;
}
const reducedShape = (s: Shape, { axes, keepdims }: ReduceAttrs): number[] =>
  keepdims ? s.map((d, i) => (axes.includes(i) ? 1 : d)) : s.filter((_, i) => !axes.includes(i));

/** The upstream gradient of a reduction, broadcast back over the reduced axes. */
const spread = (g: Tensor, x: Tensor, a: ReduceAttrs): Tensor =>
  g.reshape(reducedShape(x.shape, { axes: a.axes, keepdims: true })).expand(x.shape);

/** The VJP of max or min: the gradient goes to the extremum; ties share it equally. */
const extremumVjp: OpDef<ReduceAttrs>['vjp'] = (g, [x], y, a) => {
  const mask = x!.equal(spread(y, x!, a)).cast('float32');
  return [
    spread(g, x!, a)
      .mul(mask)
      .div(spread(mask.sum(a.axes, a.keepdims), x!, a)),
  ];
};

const reduce = (
  name: string,
  onnx: string,
  init: number,
  f: (acc: number, x: number) => number,
  post: (v: number, count: number) => number,
  vjp: OpDef<ReduceAttrs>['vjp'],
): OpDef<ReduceAttrs> =>
  def<ReduceAttrs>({
    arity: 1,
    infer: ([x], a) => {
      if (x!.dtype === 'bool') throw new GraphError(name, 'cannot reduce bool');
      return { shape: reducedShape(x!.shape, a), dtype: x!.dtype };
    },
    ref: ([x], a) => {
      const count = a.axes.reduce((c, ax) => c * x!.shape[ax]!, 1);
      return mapRef(reduceRef(x!, a.axes, a.keepdims, init, f), (v) => post(v, count));
    },
    vjp,
    lower: (o, [x], a) =>
      a.axes.length === 0
        ? o.node('Identity', [x!])
        : o.node(onnx, [x!, o.ints(a.axes)], { keepdims: { i: a.keepdims ? 1 : 0 } }),
  });

const SQRT_2PI = Math.sqrt(2 * Math.PI);
/** 1.5·2^23: float32 sums with it lie in [2^23, 2^24), where the spacing is 1. */
const ROUNDING_MAGIC = 12582912;
const GELU_C = Math.sqrt(2 / Math.PI);
const geluRef = (approximate: 'none' | 'tanh') => (x: number) =>
  approximate === 'tanh'
    ? 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x ** 3)))
    : 0.5 * x * (1 + erf(x / Math.SQRT2));

/** Seeded samples for the reference interpreter: right distribution, not ONNX Runtime's values. */
const sampleRef = (shape: Shape, seed: number, draw: (r: Rng) => number): RefArray => {
  const r = new Rng(seed);
  const out = ref(shape);
  for (let i = 0; i < out.data.length; i++) out.data[i] = draw(r);
  return out;
};

/** A leaf that holds its value (params and constants). */
const valueLeaf: OpDef<{ value: HostArray }> = {
  arity: 0,
  leaf: true,
  infer: (_, a) => ({ shape: a.value.shape, dtype: a.value.dtype }),
  ref: (_, a) => toRef(a.value),
  vjp: null,
  lower: () => '',
};

// ---- the table ----------------------------------------------------------------------

export const OPS = {
  // leaves
  input: def<{ name: string; shape: Shape; dtype: DType }>({
    arity: 0,
    leaf: true,
    infer: (_, a) => ({ shape: checkShape(`input '${a.name}'`, a.shape), dtype: a.dtype }),
    ref: (_, a) => {
      throw new GraphError('input', `'${a.name}' must be fed`);
    },
    vjp: null,
    lower: () => '',
  }),
  param: def<{ name: string; value: HostArray }>(valueLeaf),
  constant: def<{ value: HostArray }>(valueLeaf),

  // elementwise unary
  neg: unary(
    'neg',
    'Neg',
    (x) => -x,
    (g) => [g.neg()],
  ),
  exp: unary('exp', 'Exp', Math.exp, (g, _, y) => [g.mul(y)]),
  log: unary('log', 'Log', Math.log, (g, [x]) => [g.div(x!)]),
  sqrt: unary('sqrt', 'Sqrt', Math.sqrt, (g, _, y) => [g.mul(0.5).div(y)]),
  abs: unary('abs', 'Abs', Math.abs, (g, [x]) => [g.mul(x!.sign())]),
  sign: unary('sign', 'Sign', Math.sign, null),
  tanh: unary('tanh', 'Tanh', Math.tanh, (g, _, y) => [g.mul(y.mul(y).neg().add(1))]),
  erf: unary('erf', 'Erf', erf, (g, [x]) => [
    g.mul(
      x!
        .mul(x!)
        .neg()
        .exp()
        .mul(2 / Math.sqrt(Math.PI)),
    ),
  ]),
  /** Straight-through estimator: the gradient of rounding is taken as the identity. */
  round: unary('round', 'Round', roundHalfEven, (g) => [g]),
  /** Straight-through estimator, as for round. */
  floor: unary('floor', 'Floor', Math.floor, (g) => [g]),
  stopGradient: def<object>({
    arity: 1,
    infer: ([x]) => ({ shape: x!.shape, dtype: x!.dtype }),
    ref: ([x]) => x!,
    vjp: null,
    lower: (o, ins) => o.node('Identity', ins),
  }),
  gelu: def<{ approximate: 'none' | 'tanh' }>({
    arity: 1,
    infer: ([x]) => sameAsFloat('gelu', x!),
    ref: ([x], a) => mapRef(x!, geluRef(a.approximate)),
    vjp: (g, [x], _, a): Grads => {
      if (a.approximate === 'none') {
        const cdf = x!.mul(Math.SQRT1_2).erf().add(1).mul(0.5);
        const pdf = x!.mul(x!).mul(-0.5).exp().div(SQRT_2PI);
        return [g.mul(cdf.add(x!.mul(pdf)))];
      }
      const x2 = x!.mul(x!);
      const t = x!.add(x2.mul(x!).mul(0.044715)).mul(GELU_C).tanh();
      const dt = t
        .mul(t)
        .neg()
        .add(1)
        .mul(
          x2
            .mul(3 * 0.044715)
            .add(1)
            .mul(GELU_C),
        );
      return [g.mul(t.add(1).mul(0.5).add(x!.mul(0.5).mul(dt)))];
    },
    lower: (o, ins, a) => o.node('Gelu', ins, { approximate: { s: a.approximate } }),
  }),
  clip: def<{ min: number; max: number }>({
    arity: 1,
    infer: ([x], a) => {
      if (!(a.min <= a.max)) throw new GraphError('clip', `min ${a.min} > max ${a.max}`);
      return { shape: x!.shape, dtype: x!.dtype };
    },
    ref: ([x], a) => mapRef(x!, (v) => Math.min(Math.max(v, a.min), a.max)),
    vjp: (g, [x], _, a): Grads => [where(x!.less(a.min), 0, where(x!.greater(a.max), 0, g))],
    lower: (o, ins, a, out) =>
      o.node('Clip', [ins[0]!, o.scalar(a.min, out.dtype), o.scalar(a.max, out.dtype)]),
  }),
  /**
   * Clip x to ±r, r a positive tensor broadcast against x: a DAC's learned input range. The
   * gradient is the learned-range rule of aihwkit's hardware-aware training (the post-training
   * paper's Eq. 2 without its decay term, which the trainer adds): x gets g only inside the
   * range; r gets only the part of g that asks for a wider range, Σ_{x ≥ r} min(g, 0) −
   * Σ_{x ≤ −r} max(g, 0), so clipping can only grow a range and the decay alone shrinks it.
   */
  rangeClip: def<object>({
    arity: 2,
    infer: ([x, r]) => {
      needFloat('rangeClip', x!, r!);
      const shape = broadcastShapes('rangeClip', x!.shape, r!.shape);
      if (!sameShape(shape, x!.shape))
        throw new GraphError(
          'rangeClip',
          `range ${fmtShape(r!.shape)} must broadcast into x ${fmtShape(x!.shape)}`,
        );
      return { shape, dtype: x!.dtype };
    },
    ref: (ins, _a, out) => zipRef(out.shape, ins, (v, r) => Math.min(Math.max(v, -r), r)),
    vjp: (g, [x, r]): Grads => {
      const belowTop = x!.less(r!);
      const aboveBottom = x!.greater(r!.neg());
      return [
        where(belowTop, where(aboveBottom, g, 0), 0),
        where(belowTop, 0, g.minimum(0)).sub(where(aboveBottom, 0, g.maximum(0))),
      ];
    },
    lower: (o, [x, r]) => o.node('Min', [o.node('Max', [x!, o.node('Neg', [r!])]), r!]),
  }),
  /**
   * Round half to even, then clip to [−levels, levels]: a converter's code. Lowered as
   * (x + M) clipped to M ± levels, minus M, with M = 1.5·2^23, where float32 addition itself
   * rounds half to even: three vectorised, threaded passes instead of ONNX Round (one thread,
   * ~1 ns per element). Exact for levels < 2^22; straight-through gradient inside the range.
   * `inRange`: the caller knows every code lies within ±levels (a dynamic DAC range; an ADC
   * that did not saturate), so the clip, which would change nothing, is left out (two passes).
   */
  quantize: def<{ levels: number; inRange: boolean }>({
    arity: 1,
    infer: ([x], a) => {
      if (!(Number.isInteger(a.levels) && a.levels >= 1 && a.levels < 2 ** 22))
        throw new GraphError('quantize', `levels ${a.levels}: use a whole number in 1..2^22 − 1`);
      return sameAsFloat('quantize', x!);
    },
    ref: ([x], a) =>
      mapRef(x!, (v) =>
        a.inRange ? roundHalfEven(v) : Math.min(Math.max(roundHalfEven(v), -a.levels), a.levels),
      ),
    vjp: (g, [x], _, a): Grads => [where(x!.abs().greater(a.levels + 0.5), 0, g)],
    lower: (o, [x], a) => {
      const m = o.scalar(ROUNDING_MAGIC, 'float32');
      const shifted = o.node('Add', [x!, m]);
      const clipped = a.inRange
        ? shifted
        : o.node('Clip', [
            shifted,
            o.scalar(ROUNDING_MAGIC - a.levels, 'float32'),
            o.scalar(ROUNDING_MAGIC + a.levels, 'float32'),
          ]);
      return o.node('Sub', [clipped, m]);
    },
  }),
  cast: def<{ to: DType }>({
    arity: 1,
    infer: ([x], a) => ({ shape: x!.shape, dtype: a.to }),
    ref: ([x], a) =>
      a.to === 'bool'
        ? mapRef(x!, (v) => (v ? 1 : 0))
        : a.to === 'float32'
          ? mapRef(x!, Math.fround)
          : mapRef(x!, Math.trunc),
    vjp: (g, [x], _, a): Grads => [a.to === 'float32' && x!.dtype === 'float32' ? g : null],
    lower: (o, ins, a) => o.node('Cast', ins, { to: { i: ONNX_DTYPE[a.to] } }),
  }),

  // elementwise binary
  add: binary(
    'add',
    'Add',
    (a, b) => a + b,
    (g) => [g, g],
  ),
  sub: binary(
    'sub',
    'Sub',
    (a, b) => a - b,
    (g) => [g, g.neg()],
  ),
  mul: binary(
    'mul',
    'Mul',
    (a, b) => a * b,
    (g, [a, b]) => [g.mul(b!), g.mul(a!)],
  ),
  div: binary(
    'div',
    'Div',
    (a, b) => a / b,
    (g, [, b], y) => [g.div(b!), g.mul(y).div(b!).neg()],
  ),
  pow: binary(
    'pow',
    'Pow',
    (a, b) => a ** b,
    (g, [a, b], y) => [g.mul(b!).mul(a!.pow(b!.sub(1))), g.mul(y).mul(a!.log())],
  ),
  maximum: binary('maximum', 'Max', Math.max, (g, [a, b]) => [
    where(a!.less(b!), 0, g),
    where(a!.less(b!), g, 0),
  ]),
  minimum: binary('minimum', 'Min', Math.min, (g, [a, b]) => [
    where(a!.greater(b!), 0, g),
    where(a!.greater(b!), g, 0),
  ]),
  less: binary('less', 'Less', (a, b) => +(a < b), null, 'bool'),
  greater: binary('greater', 'Greater', (a, b) => +(a > b), null, 'bool'),
  equal: binary('equal', 'Equal', (a, b) => +(a === b), null, 'bool'),
  where: def<object>({
    arity: 3,
    infer: ([c, a, b]) => {
      if (c!.dtype !== 'bool') throw new GraphError('where', `condition must be bool, got ${c!.dtype}`);
      sameDtype('where', a!, b!);
      const shape = broadcastShapes('where', broadcastShapes('where', c!.shape, a!.shape), b!.shape);
      return { shape, dtype: a!.dtype };
    },
    ref: (ins, _a, out) => zipRef(out.shape, ins, (c, a, b) => (c ? a : b)),
    vjp: (g, [c]): Grads => [null, where(c!, g, 0), where(c!, 0, g)],
    lower: (o, ins, _a, t) => o.node('Where', sameRankConstants(o, ins, t)),
  }),
  /**
   * c ? a : b for one boolean c (a tensor of one element): `where` with a scalar condition,
   * except that what only a (or only b) needs is computed inside an ONNX `If` branch, so the
   * branch not taken costs nothing. The reference evaluates both.
   */
  cond: def<object>({
    arity: 3,
    lazy: [1, 2],
    infer: ([c, a, b]) => {
      if (c!.dtype !== 'bool' || c!.size !== 1)
        throw new GraphError('cond', `condition must be one bool, got ${c!.dtype} ${fmtShape(c!.shape)}`);
      sameDtype('cond', a!, b!);
      if (!sameShape(a!.shape, b!.shape))
        throw new GraphError('cond', `branches differ: ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)}`);
      return { shape: a!.shape, dtype: a!.dtype };
    },
    ref: ([c, a, b]) => (c!.data[0] ? a! : b!),
    vjp: (g, [c]): Grads => {
      const flag = c!.reshape([]);
      return [null, where(flag, g, 0), where(flag, 0, g)];
    },
    lower: (o, [c], _a, out) => {
      const flag = out.inputs[0]!.rank === 0 ? c! : o.node('Reshape', [c!, o.ints([])]);
      return o.node('If', [flag], { then_branch: o.branch(1), else_branch: o.branch(2) });
    },
  }),

  // reductions
  sum: reduce(
    'sum',
    'ReduceSum',
    0,
    (s, x) => s + x,
    (v) => v,
    (g, [x], _, a) => [spread(g, x!, a)],
  ),
  mean: reduce(
    'mean',
    'ReduceMean',
    0,
    (s, x) => s + x,
    (v, n) => v / n,
    (g, [x], _, a) => {
      const count = a.axes.reduce((c, ax) => c * x!.shape[ax]!, 1);
      return [spread(g, x!, a).div(count)];
    },
  ),
  max: reduce('max', 'ReduceMax', -Infinity, Math.max, (v) => v, extremumVjp),
  min: reduce('min', 'ReduceMin', Infinity, Math.min, (v) => v, extremumVjp),

  // movement
  reshape: def<{ shape: Shape }>({
    arity: 1,
    view: true,
    infer: ([x], a) => {
      checkShape('reshape', a.shape);
      if (numel(a.shape) !== x!.size) {
        throw new GraphError('reshape', `cannot reshape ${fmtShape(x!.shape)} to ${fmtShape(a.shape)}`);
      }
      return { shape: a.shape, dtype: x!.dtype };
    },
    ref: ([x], a) => ({ shape: a.shape, data: x!.data }),
    vjp: (g, [x]): Grads => [g.reshape(x!.shape)],
    lower: (o, [x], a) => o.node('Reshape', [x!, o.ints(a.shape)]),
  }),
  transpose: def<{ perm: readonly number[] }>({
    arity: 1,
    infer: ([x], a) => {
      const ok = a.perm.length === x!.rank && [...a.perm].sort((p, q) => p - q).every((p, i) => p === i);
      if (!ok) throw new GraphError('transpose', `perm [${a.perm}] is not a permutation of ${x!.rank} axes`);
      return { shape: a.perm.map((p) => x!.shape[p]!), dtype: x!.dtype };
    },
    ref: ([x], a) => transposeRef(x!, a.perm),
    vjp: (g, _, __, a): Grads => [g.transpose(a.perm.map((_p, i) => a.perm.indexOf(i)))],
    lower: (o, ins, a) => o.node('Transpose', ins, { perm: { ints: a.perm } }),
  }),
  /** Broadcasts to `shape`; the gradient is reduced back by the autodiff driver. */
  expand: def<{ shape: Shape }>({
    arity: 1,
    infer: ([x], a) => {
      const s = broadcastShapes('expand', x!.shape, a.shape);
      if (!sameShape(s, a.shape))
        throw new GraphError('expand', `cannot expand ${fmtShape(x!.shape)} to ${fmtShape(a.shape)}`);
      return { shape: a.shape, dtype: x!.dtype };
    },
    ref: (ins, a) => zipRef(a.shape, ins, (v) => v),
    vjp: (g): Grads => [g],
    lower: (o, [x], a) => o.node('Expand', [x!, o.ints(a.shape)]),
  }),
  concat: def<{ axis: number }>({
    arity: 'variadic',
    infer: (xs, a) => {
      const first = xs[0];
      if (!first) throw new GraphError('concat', 'needs at least one tensor');
      if (a.axis < 0 || a.axis >= first.rank)
        throw new GraphError('concat', `axis ${a.axis} out of range for rank ${first.rank}`);
      const shape = [...first.shape];
      for (const t of xs.slice(1)) {
        sameDtype('concat', first, t);
        const fits = t.rank === first.rank && t.shape.every((d, i) => i === a.axis || d === first.shape[i]);
        if (!fits)
          throw new GraphError(
            'concat',
            `shapes ${xs.map((x) => fmtShape(x.shape)).join(', ')} differ off axis ${a.axis}`,
          );
        shape[a.axis]! += t.shape[a.axis]!;
      }
      return { shape, dtype: first.dtype };
    },
    ref: (xs, a, out) => {
      const o = ref(out.shape);
      let at = 0;
      for (const x of xs) {
        addBlockRef(
          o,
          x,
          out.shape.map((_, i) => (i === a.axis ? at : 0)),
        );
        at += x.shape[a.axis]!;
      }
      return o;
    },
    vjp: (g, xs, _, a): Grads => {
      let at = 0;
      return xs.map((x) => {
        const part = g.slice(a.axis, at, at + x.shape[a.axis]!);
        at += x.shape[a.axis]!;
        return part;
      });
    },
    lower: (o, ins, a) => o.node('Concat', ins, { axis: { i: a.axis } }),
  }),
  /** A block [starts, ends) with step 1 on every axis. */
  slice: def<{ starts: readonly number[]; ends: readonly number[] }>({
    arity: 1,
    infer: ([x], a) => {
      const ok =
        a.starts.length === x!.rank &&
        a.ends.length === x!.rank &&
        a.starts.every((s, i) => s >= 0 && s <= a.ends[i]! && a.ends[i]! <= x!.shape[i]!);
      if (!ok) throw new GraphError('slice', `[${a.starts}]..[${a.ends}] does not fit ${fmtShape(x!.shape)}`);
      return { shape: a.ends.map((e, i) => e - a.starts[i]!), dtype: x!.dtype };
    },
    ref: ([x], a, out) => sliceRef(x!, a.starts, out.shape),
    vjp: (g, [x], _, a): Grads => [
      pad(
        g,
        a.starts,
        a.ends.map((e, i) => x!.shape[i]! - e),
      ),
    ],
    lower: (o, [x], a, out) => {
      const full = out.inputs[0]!.shape;
      const axes = a.starts.flatMap((s, i) => (s !== 0 || a.ends[i] !== full[i] ? [i] : []));
      if (axes.length === 0) return o.node('Identity', [x!]);
      return o.node('Slice', [
        x!,
        o.ints(axes.map((i) => a.starts[i]!)),
        o.ints(axes.map((i) => a.ends[i]!)),
        o.ints(axes),
      ]);
    },
  }),
  /** Zero padding: `before[i]` and `after[i]` elements on axis i. */
  pad: def<{ before: readonly number[]; after: readonly number[] }>({
    arity: 1,
    infer: ([x], a) => {
      const ok =
        a.before.length === x!.rank &&
        a.after.length === x!.rank &&
        [...a.before, ...a.after].every((p) => Number.isInteger(p) && p >= 0);
      if (!ok)
        throw new GraphError('pad', `pads [${a.before}] / [${a.after}] do not fit ${fmtShape(x!.shape)}`);
      return { shape: x!.shape.map((d, i) => d + a.before[i]! + a.after[i]!), dtype: x!.dtype };
    },
    ref: ([x], a, out) => {
      const o = ref(out.shape);
      addBlockRef(o, x!, a.before);
      return o;
    },
    vjp: (g, [x], _, a): Grads => [
      apply('slice', [g], { starts: a.before, ends: a.before.map((b, i) => b + x!.shape[i]!) }),
    ],
    lower: (o, [x], a) => o.node('Pad', [x!, o.ints([...a.before, ...a.after])]),
  }),
  /** data[..., indices, ...] along `axis`: out = data.shape[:axis] + indices.shape + data.shape[axis+1:]. */
  gather: def<{ axis: number }>({
    arity: 2,
    infer: ([d, i], a) => {
      if (i!.dtype !== 'int32' && i!.dtype !== 'int64')
        throw new GraphError('gather', `indices must be int32 or int64, got ${i!.dtype}`);
      if (a.axis < 0 || a.axis >= d!.rank)
        throw new GraphError('gather', `axis ${a.axis} out of range for ${fmtShape(d!.shape)}`);
      return {
        shape: [...d!.shape.slice(0, a.axis), ...i!.shape, ...d!.shape.slice(a.axis + 1)],
        dtype: d!.dtype,
      };
    },
    ref: ([d, idx], a, out) => {
      const outer = numel(d!.shape.slice(0, a.axis));
      const n = d!.shape[a.axis]!;
      const inner = numel(d!.shape.slice(a.axis + 1));
      const o = ref(out.shape);
      const m = idx!.data.length;
      for (let p = 0; p < outer; p++) {
        for (let k = 0; k < m; k++) {
          const j = idx!.data[k]! < 0 ? idx!.data[k]! + n : idx!.data[k]!;
          if (!(j >= 0 && j < n))
            throw new GraphError('gather', `index ${idx!.data[k]} out of range 0..${n - 1}`);
          for (let q = 0; q < inner; q++) o.data[(p * m + k) * inner + q] = d!.data[(p * n + j) * inner + q]!;
        }
      }
      return o;
    },
    vjp: (g, [d, idx], _, a): Grads => {
      // move the gathered axes to the front, scatter-add along axis 0, move back
      const r = idx!.rank;
      const front = [...Array(r).keys()].map((k) => a.axis + k);
      const rest = [...g.shape.keys()].filter((k) => k < a.axis || k >= a.axis + r);
      const moved = g.transpose([...front, ...rest]);
      const dShape = [d!.shape[a.axis]!, ...d!.shape.filter((_, k) => k !== a.axis)];
      const scattered = apply('scatterAdd', [idx!, moved], { shape: dShape });
      const back = [...Array(d!.rank).keys()].map((k) => (k < a.axis ? k + 1 : k === a.axis ? 0 : k));
      return [scattered.transpose(back), null];
    },
    lower: (o, ins, a) => o.node('Gather', ins, { axis: { i: a.axis } }),
  }),
  /** zeros(shape) with updates[k] added at row indices[k] (the gradient of gather). */
  scatterAdd: def<{ shape: Shape }>({
    arity: 2,
    infer: ([i, u], a) => {
      const want = [...i!.shape, ...a.shape.slice(1)];
      if (!sameShape(u!.shape, want))
        throw new GraphError('scatterAdd', `updates ${fmtShape(u!.shape)} should be ${fmtShape(want)}`);
      return { shape: a.shape, dtype: u!.dtype };
    },
    ref: ([idx, u], a) => {
      const o = ref(a.shape);
      const inner = numel(a.shape.slice(1));
      idx!.data.forEach((j, k) => {
        const row = j < 0 ? j + a.shape[0]! : j;
        for (let q = 0; q < inner; q++) o.data[row * inner + q]! += u!.data[k * inner + q]!;
      });
      return o;
    },
    vjp: (g, [idx]): Grads => [null, g.gather(idx!, 0)],
    lower: (o, [i, u], a, out) => {
      const zeros = o.node('Expand', [o.scalar(0, out.dtype), o.ints(a.shape)]);
      const idx64 = o.node('Unsqueeze', [o.node('Cast', [i!], { to: { i: 7 } }), o.ints([-1])]);
      return o.node('ScatterND', [zeros, idx64, u!], { reduction: { s: 'add' } });
    },
  }),

  // linear algebra and fused layers
  /** Batched matmul over broadcast batch dims: [..., M, K] × [..., K, N] → [..., M, N]. */
  matmul: def<object>({
    arity: 2,
    infer: ([a, b]) => {
      needFloat('matmul', a!, b!);
      const k1 = a!.shape[a!.rank - 1];
      const k2 = b!.shape[b!.rank - 2];
      if (a!.rank < 2 || b!.rank < 2 || k1 !== k2) {
        throw new GraphError(
          'matmul',
          `shapes ${fmtShape(a!.shape)} and ${fmtShape(b!.shape)} do not multiply (need [..., M, K] × [..., K, N])`,
        );
      }
      const batch = broadcastShapes('matmul', a!.shape.slice(0, -2), b!.shape.slice(0, -2));
      return { shape: [...batch, a!.shape[a!.rank - 2]!, b!.shape[b!.rank - 1]!], dtype: 'float32' };
    },
    ref: ([a, b], _a, out) => matmulRef(a!, b!, out.shape),
    vjp: (g, [a, b]): Grads => {
      const ga = g.matmul(b!.transpose());
      if (b!.rank === 2 && a!.rank > 2) {
        // a weight: one [K, rows]×[rows, N] product instead of a batch of them and a reduction
        const [k, n] = b!.shape as [number, number];
        return [
          ga,
          a!
            .reshape([-1, k])
            .transpose()
            .matmul(g.reshape([-1, n])),
        ];
      }
      return [ga, a!.transpose().matmul(g)];
    },
    lower: (o, ins) => o.node('MatMul', ins),
  }),
  softmax: def<{ axis: number }>({
    arity: 1,
    infer: ([x]) => sameAsFloat('softmax', x!),
    ref: ([x], a) => softmaxRef(x!, a.axis, false),
    vjp: (g, _, y, a): Grads => [y.mul(g.sub(g.mul(y).sum(a.axis, true)))],
    lower: (o, ins, a) => o.node('Softmax', ins, { axis: { i: a.axis } }),
  }),
  logSoftmax: def<{ axis: number }>({
    arity: 1,
    infer: ([x]) => sameAsFloat('logSoftmax', x!),
    ref: ([x], a) => softmaxRef(x!, a.axis, true),
    vjp: (g, _, y, a): Grads => [g.sub(y.exp().mul(g.sum(a.axis, true)))],
    lower: (o, ins, a) => o.node('LogSoftmax', ins, { axis: { i: a.axis } }),
  }),
  /** LayerNorm over the last axis: (x − μ)/√(σ² + eps)·γ + β, with γ, β of shape [D]. */
  layerNorm: def<{ eps: number }>({
    arity: 3,
    infer: ([x, w, b]) => {
      needFloat('layerNorm', x!, w!, b!);
      const d = x!.shape[x!.rank - 1];
      if (w!.rank !== 1 || b!.rank !== 1 || w!.shape[0] !== d || b!.shape[0] !== d) {
        throw new GraphError(
          'layerNorm',
          `γ ${fmtShape(w!.shape)} and β ${fmtShape(b!.shape)} must be [${d}] for x ${fmtShape(x!.shape)}`,
        );
      }
      return { shape: x!.shape, dtype: x!.dtype };
    },
    ref: ([x, w, b], a) => {
      const d = x!.shape[x!.shape.length - 1]!;
      const o = ref(x!.shape);
      for (let r = 0; r < x!.data.length / d; r++) {
        const row = x!.data.subarray(r * d, (r + 1) * d);
        const mu = row.reduce((s, v) => s + v, 0) / d;
        const v = row.reduce((s, t) => s + (t - mu) ** 2, 0) / d;
        const rstd = 1 / Math.sqrt(v + a.eps);
        for (let i = 0; i < d; i++) o.data[r * d + i] = (row[i]! - mu) * rstd * w!.data[i]! + b!.data[i]!;
      }
      return o;
    },
    vjp: (g, [x, w], _, a): Grads => {
      const xc = x!.sub(x!.mean(-1, true));
      const rstd = scalar(1).div(xc.mul(xc).mean(-1, true).add(a.eps).sqrt()); // Div, not Pow: ORT's Pow is slow
      const xhat = xc.mul(rstd);
      const gh = g.mul(w!);
      const dx = gh
        .sub(gh.mean(-1, true))
        .sub(xhat.mul(gh.mul(xhat).mean(-1, true)))
        .mul(rstd);
      return [dx, g.mul(xhat), g];
    },
    lower: (o, ins, a) => o.node('LayerNormalization', ins, { axis: { i: -1 }, epsilon: { f: a.eps } }),
  }),

  /**
   * A kernel that runs outside ONNX Runtime on host arrays (runtime/segments.ts splits the
   * graph around it): `run` maps the inputs' values to the output's, `key` names the kernel
   * and everything it was built with (the graph's cache key); `transient`: its output buffer is
   * not kept between runs; `gpu`: the same kernel for the WebGPU runtime, given the inputs'
   * shapes (without it, that runtime runs `run` on values copied to the host and back).
   * Inference only.
   */
  host: def<{
    key: string;
    shape: Shape;
    dtype: DType;
    run: HostKernel;
    transient: boolean;
    gpu?: GpuKernel;
  }>({
    arity: 'variadic',
    infer: (_, a) => ({ shape: checkShape(`host '${a.key}'`, a.shape), dtype: a.dtype }),
    ref: (ins, a) => toRef(a.run(ins.map((r) => fromRef(r, 'float32')))),
    vjp: (_g, _ins, _out, a) => {
      throw new GraphError('host', `'${a.key}' runs outside the graph and has no gradient`);
    },
    lower: (_o, _ins, a) => {
      throw new GraphError(
        'host',
        `'${a.key}' runs outside ONNX Runtime: compile the graph with runtime/session.ts`,
      );
    },
  }),

  // random sources: a new draw at every run of a compiled graph
  /** N(0, std²) noise keyed by sample (tensor.ts `noise`), fed by the runtime at every run. */
  noise: def<{ shape: Shape; seed: number; std: number; batchAxis: number; batch: number }>({
    arity: 0,
    leaf: true,
    infer: (_, a) => {
      const shape = checkShape('noise', a.shape);
      const along = shape[a.batchAxis];
      if (
        !Number.isInteger(a.batchAxis) ||
        a.batchAxis < 0 ||
        a.batchAxis >= shape.length - 1 ||
        !(a.batch >= 1) ||
        along! % a.batch !== 0
      ) {
        throw new GraphError(
          'noise',
          `batch axis ${a.batchAxis} of ${fmtShape(shape)} cannot hold ${a.batch} samples: it must be an axis before the last whose size is a multiple of the batch`,
        );
      }
      return { shape, dtype: 'float32' };
    },
    ref: (_, a) => {
      const data = new Float32Array(numel(a.shape));
      fillNoise(data, noiseLayout(a.shape, a.batchAxis, a.batch), a.seed, a.std, 0);
      return ref(a.shape, data);
    },
    vjp: null,
    lower: () => '',
  }),
  randomNormal: def<{ shape: Shape; seed: number; mean: number; std: number }>({
    arity: 0,
    infer: (_, a) => ({ shape: checkShape('randomNormal', a.shape), dtype: 'float32' }),
    ref: (_, a) => sampleRef(a.shape, a.seed, (r) => a.mean + a.std * r.normal()),
    vjp: null,
    lower: (o, _, a) =>
      o.node('RandomNormal', [], {
        shape: { ints: a.shape },
        mean: { f: a.mean },
        scale: { f: a.std },
        seed: { f: a.seed },
        dtype: { i: 1 },
      }),
  }),
  randomUniform: def<{ shape: Shape; seed: number; low: number; high: number }>({
    arity: 0,
    infer: (_, a) => ({ shape: checkShape('randomUniform', a.shape), dtype: 'float32' }),
    ref: (_, a) => sampleRef(a.shape, a.seed, (r) => a.low + (a.high - a.low) * r.uniform()),
    vjp: null,
    lower: (o, _, a) =>
      o.node('RandomUniform', [], {
        shape: { ints: a.shape },
        low: { f: a.low },
        high: { f: a.high },
        seed: { f: a.seed },
        dtype: { i: 1 },
      }),
  }),
} as const;

export type OpName = keyof typeof OPS;
export type AttrsOf<K extends OpName> = (typeof OPS)[K] extends OpDef<infer A> ? A : never;

function softmaxRef(x: RefArray, axis: number, log: boolean): RefArray {
  const m = reduceRef(x, [axis], true, -Infinity, Math.max);
  const e = zipRef(x.shape, [x, m], (v, mx) => Math.exp(v - mx));
  const s = reduceRef(e, [axis], true, 0, (a, v) => a + v);
  return log
    ? zipRef(x.shape, [x, m, s], (v, mx, t) => v - mx - Math.log(t))
    : zipRef(x.shape, [e, s], (v, t) => v / t);
}
