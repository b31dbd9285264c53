/**
 * Elementwise ops and their fusion: a chain of per-element ops (with broadcast inputs, views
 * and `cond`) becomes one kernel that reads each external input once per element and writes
 * only the chain's last value. Each op's WGSL is the expression beside it.
 */

import type { KernelSpec } from '../../graph/gpu-kernel.js';
import type { HostArray } from '../../graph/ndarray.js';
import type { OpName } from '../../graph/ops.js';
import { type DType, numel, type Shape } from '../../graph/shape.js';
import type { Tensor } from '../../graph/tensor.js';
import { noiseFunctions, RUN_UNIFORM } from './noise.js';
import { PHILOX_WGSL } from './philox.js';
import {
  broadcastOffset,
  isLiteral,
  literal,
  load,
  type Operand,
  operandHead,
  perElement,
  storageType,
  store,
  valueType,
} from './wgsl.js';

/** erf to ~1e-7: its series near 0 (where 1 − erfc would lose the digits), erfc's fit beyond. */
const ERF = `fn xerf(x: f32) -> f32 {
  let a = abs(x);
  if (a < 0.5) {
    let z = x * x;
    return x * (1.1283791671 + z * (-0.3761263890 + z * (0.1128379167 + z * (-0.0268661706 + z * (0.0052239776 + z * -0.0008548327)))));
  }
  let t = 1.0 / (1.0 + 0.5 * a);
  let e = t * exp(-a * a - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
    + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return sign(x) * (1.0 - e);
}`;

/** x^y as ONNX Pow: negative bases with whole exponents keep their sign. */
const POW = `fn xpow(x: f32, y: f32) -> f32 {
  if (y == 0.0) { return 1.0; }
  if (x >= 0.0) { return pow(x, y); }
  if (y != floor(y)) { return sqrt(x); } // NaN, as a negative base to a fractional power
  let m = pow(-x, y);
  return select(m, -m, fract(y * 0.5) != 0.0);
}`;

/** tanh saturates to ±1 well before 10; clamping keeps exp-based tanh finite. */
const TANH = (x: string) => `tanh(clamp(${x}, -10.0, 10.0))`;

type Expr = (args: readonly string[], t: Tensor) => string;

const inDtype = (t: Tensor, k = 0): DType => t.inputs[k]!.dtype;

/** Float comparisons and arithmetic as WGSL operators; bool registers for the tests. */
const EXPRS: Partial<Record<OpName, Expr>> = {
  neg: ([x]) => `-(${x})`,
  exp: ([x]) => `exp(${x})`,
  log: ([x]) => `log(${x})`,
  sqrt: ([x]) => `sqrt(${x})`,
  abs: ([x]) => `abs(${x})`,
  sign: ([x]) => `sign(${x})`,
  tanh: ([x]) => TANH(x!),
  erf: ([x]) => `xerf(${x})`,
  round: ([x]) => `round(${x})`,
  floor: ([x]) => `floor(${x})`,
  stopGradient: ([x]) => x!,
  gelu: ([x], t) =>
    (t.attrs as { approximate: string }).approximate === 'tanh'
      ? `(0.5 * (${x}) * (1.0 + ${TANH(`0.7978845608 * ((${x}) + 0.044715 * (${x}) * (${x}) * (${x}))`)}))`
      : `(0.5 * (${x}) * (1.0 + xerf((${x}) * 0.7071067812)))`,
  clip: ([x], t) => {
    const { min, max } = t.attrs as { min: number; max: number };
    let e = x!;
    if (isLiteral(min)) e = `max(${e}, ${literal(min, t.dtype)})`;
    if (isLiteral(max)) e = `min(${e}, ${literal(max, t.dtype)})`;
    return e;
  },
  rangeClip: ([x, r]) => `min(max(${x}, -(${r})), ${r})`,
  quantize: ([x], t) => {
    const { levels, inRange } = t.attrs as { levels: number; inRange: boolean };
    return inRange ? `round(${x})` : `clamp(round(${x}), ${-levels}.0, ${levels}.0)`;
  },
  cast: ([x], t) => {
    const from = inDtype(t);
    const to = t.dtype;
    if (to === 'bool') return from === 'bool' ? x! : `(${x} != ${literal(0, from)})`;
    if (from === 'bool') return `select(${literal(0, to)}, ${literal(1, to)}, ${x})`;
    if (to === 'float32') return `f32(${x})`;
    if (from === 'float32') return `i32(${x})`;
    return x!;
  },
  add: ([a, b]) => `(${a} + ${b})`,
  sub: ([a, b]) => `(${a} - ${b})`,
  mul: ([a, b]) => `(${a} * ${b})`,
  div: ([a, b]) => `(${a} / ${b})`,
  pow: ([a, b], t) => (t.dtype === 'float32' ? `xpow(${a}, ${b})` : `i32(xpow(f32(${a}), f32(${b})))`),
  maximum: ([a, b]) => `max(${a}, ${b})`,
  minimum: ([a, b]) => `min(${a}, ${b})`,
  less: ([a, b]) => `(${a} < ${b})`,
  greater: ([a, b]) => `(${a} > ${b})`,
  equal: ([a, b]) => `(${a} == ${b})`,
  where: ([c, a, b]) => `select(${b}, ${a}, ${c})`,
  /** Both branches are computed (they are inputs), then one is selected. */
  cond: ([c, a, b]) => `select(${b}, ${a}, ${c})`,
  expand: ([x]) => x!,
};

/** Ops a fused kernel computes per element. */
export const isElementwise = (t: Tensor): boolean => t.op in EXPRS;

/** A constant of one element, written into the kernel as a literal instead of bound. */
export function inlineScalar(t: Tensor): string | undefined {
  if (t.op !== 'constant' || t.size !== 1 || t.dtype === 'int64') return undefined;
  const v = Number((t.attrs as { value: HostArray }).value.data[0]!);
  return isLiteral(v) ? literal(v, t.dtype) : undefined;
}

/** A noise value a fused chain draws: its leaf and how the chain's shape reads it. */
interface Draw {
  leaf: Tensor;
  /** The shape of the member that reads it, and the shape it is read as (a view's). */
  at: Shape;
  as: Shape;
}

/**
 * The value of `members` (in topological order; the last is the chain's result) at a flat
 * index of the result, as a WGSL function `value(i, z…)`. Values the chain reads but does not
 * compute are `inputs`, bound in that order; a member may read them broadcast. A member with
 * fewer elements than the result (read broadcast by its one reader) is computed at the element
 * its reader reads. `noise` leaves it reads that are not among `inputs` are drawn per element
 * in the kernel (noise.ts): their values are the `z` arguments. `source` follows views to what
 * they show.
 */
export function fusedOperand(
  members: readonly Tensor[],
  inputs: readonly Tensor[],
  source: (t: Tensor) => Tensor,
): Operand & { draws: readonly Draw[]; block(e: string): string[] } {
  const last = members[members.length - 1]!;
  const vars = new Map<number, string>(members.map((m, k) => [m.id, `v${k}`]));
  const slot = new Map<number, number>(inputs.map((t, k) => [t.id, k]));
  const draws: Draw[] = [];
  const drawn = new Map<string, string>();
  /** WGSL function names of the noise leaves drawn, by leaf. */
  const leaves = new Map<Tensor, string>();
  // each member's flat index, from its reader's: the result's `i`, or where a smaller member's
  // reader reads it
  const index = new Map<number, string>([[last.id, 'i']]);
  for (let k = members.length - 1; k >= 0; k--) {
    const r = members[k]!;
    for (const u of r.inputs) {
      const m = source(u);
      if (!vars.has(m.id) || index.has(m.id)) continue;
      const at = index.get(r.id)!;
      index.set(m.id, numel(m.shape) === numel(r.shape) ? at : broadcastOffset(r.shape, u.shape, at));
    }
  }
  const lines = members.map((m, k) => {
    const at = index.get(m.id)!;
    const args = m.inputs.map((u) => {
      const own = vars.get(source(u).id);
      if (own) return own;
      const lit = inlineScalar(u);
      if (lit) return lit;
      const s = slot.get(u.id);
      if (s === undefined && source(u).op === 'noise') {
        const leaf = source(u);
        if (!leaves.has(leaf)) leaves.set(leaf, `noise${leaves.size}`);
        const key = `${leaf.id} ${broadcastOffset(m.shape, u.shape, at)}`;
        if (!drawn.has(key)) {
          drawn.set(key, `z${draws.length}`);
          draws.push({ leaf, at: m.shape, as: u.shape });
        }
        return drawn.get(key)!;
      }
      return load(u.dtype, `in${s!}[${broadcastOffset(m.shape, u.shape, at)}]`);
    });
    return `  let v${k} = ${EXPRS[m.op]!(args, m)};`;
  });
  const body = lines.join('\n');
  const helpers = [body.includes('xerf(') ? ERF : '', body.includes('xpow(') ? POW : ''].filter(Boolean);
  if (draws.length)
    helpers.push(RUN_UNIFORM, PHILOX_WGSL, ...[...leaves].map(([leaf, name]) => noiseFunctions(leaf, name)));
  const params = ['i: u32', ...draws.map((_, k) => `z${k}: f32`)].join(', ');
  const fn = `fn value(${params}) -> ${valueType(last.dtype)} {\n${body}\n  return v${members.length - 1};\n}`;
  const noiseOf = (d: Draw) => leaves.get(d.leaf)!;
  return {
    inputs: inputs.map((t) => storageType(t.dtype)),
    code: [...helpers, fn].join('\n'),
    at: (i) =>
      `value(${[i, ...draws.map((d) => `${noiseOf(d)}(${broadcastOffset(d.at, d.as, i)})`)].join(', ')})`,
    draws,
    block: (e) => draws.map((d) => `${noiseOf(d)}Block(${e})`),
  };
}

/**
 * One kernel computing a fused chain (`fusedOperand`) for every element of its result. Where
 * the chain draws noise, each read whole with its columns in blocks of 4, a thread computes the
 * four elements of a Philox block: one Philox and two Box–Muller pairs for four values, where a
 * thread per element would run a Philox for each.
 */
export function fusedKernel(
  members: readonly Tensor[],
  inputs: readonly Tensor[],
  source: (t: Tensor) => Tensor,
): KernelSpec {
  const root = members[members.length - 1]!;
  const op = fusedOperand(members, inputs, source);
  const head = operandHead(op, root.dtype);
  const n = numel(root.shape);
  const byBlock =
    op.draws.length > 0 && op.draws.every((d) => numel(d.as) === n && d.leaf.shape.at(-1)! % 4 === 0);
  if (!byBlock)
    return {
      ...perElement(n, head, `  out[i] = ${store(root.dtype, op.at('i'))};`),
      inputs: inputs.length,
      ...(op.draws.length ? { run: true } : {}),
    };
  const blocks = op.block('e');
  const body = `  let e = 4u * i;
${blocks.map((b, k) => `  let b${k} = ${b};`).join('\n')}
  for (var l = 0u; l < 4u; l++) {
    out[e + l] = ${store(root.dtype, `value(${['e + l', ...blocks.map((_, k) => `b${k}[l]`)].join(', ')})`)};
  }`;
  return { ...perElement(n / 4, head, body), inputs: inputs.length, run: true };
}
