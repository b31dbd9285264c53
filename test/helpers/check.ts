/**
 * Checks an op through ONNX Runtime against the float64 reference interpreter: the forward
 * values, and the gradient of Σ out·r (r fixed random) against central finite differences
 * computed in float64 on the reference.
 */
import assert from 'node:assert/strict';
import { grad } from '../../src/graph/autodiff.js';
import { type HostArray, hostArray, type RefArray, ref } from '../../src/graph/ndarray.js';
import { evaluateRef } from '../../src/graph/reference.js';
import type { DType, Shape } from '../../src/graph/shape.js';
import { constant, input, type Tensor } from '../../src/graph/tensor.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';

export interface InputSpec {
  shape: Shape;
  dtype?: DType;
  /** Values drawn for this input (default: standard normal). */
  gen?: (r: Rng) => number;
  /** Include in the gradient check (default: float inputs). */
  grad?: boolean;
}

export interface OpCase {
  /** A label for the row, e.g. 'add (broadcast)'. */
  name: string;
  inputs: InputSpec[];
  build: (...xs: Tensor[]) => Tensor;
  /** Max |ort − ref| / max(1, |ref|∞) for the forward pass. */
  atol?: number;
  /** The same, for gradients against finite differences. */
  gradTol?: number;
  /** Expected gradient instead of finite differences (straight-through estimators). */
  expectGrad?: (xs: RefArray[], r: RefArray) => RefArray[];
}

export function makeInputs(specs: InputSpec[], rng: Rng): HostArray[] {
  return specs.map((s) => {
    const a = hostArray(s.dtype ?? 'float32', s.shape);
    const gen = s.gen ?? ((r: Rng) => r.normal());
    for (let i = 0; i < a.data.length; i++) (a.data as Float32Array)[i] = gen(rng);
    return a;
  });
}

export const maxRelErr = (got: ArrayLike<number>, want: ArrayLike<number>): number => {
  let err = 0;
  let scale = 1;
  for (let i = 0; i < want.length; i++) {
    err = Math.max(err, Math.abs(got[i]! - want[i]!));
    scale = Math.max(scale, Math.abs(want[i]!));
  }
  return err / scale;
};

export async function checkOp(c: OpCase, seed = 1): Promise<void> {
  const rng = new Rng(seed);
  const values = makeInputs(c.inputs, rng);
  const xs = c.inputs.map((s, i) => input(`x${i}`, s.shape, s.dtype ?? 'float32'));
  const out = c.build(...xs);
  const feeds = Object.fromEntries(values.map((v, i) => [`x${i}`, v]));

  const [want] = evaluateRef([out], feeds);
  const g = await compile({ out }, { cache: false });
  const got = (await g.run(feeds))['out']!;
  assert.deepEqual(got.shape, out.shape, `${c.name}: output shape`);
  const fwdErr = maxRelErr(Array.from(got.data as Float32Array, Number), want!.data);
  assert.ok(fwdErr <= (c.atol ?? 1e-5), `${c.name}: forward error ${fwdErr.toExponential(2)}`);

  const gradIdx = c.inputs.flatMap((s, i) => ((s.grad ?? (s.dtype ?? 'float32') === 'float32') ? [i] : []));
  if (gradIdx.length === 0 || out.dtype !== 'float32') return;
  const r = ref(out.shape);
  for (let i = 0; i < r.data.length; i++) r.data[i] = rng.normal();
  const rT = constant(hostArray('float32', out.shape, Float32Array.from(r.data)));
  const loss = out.mul(rT).sum();
  const gs = grad(
    loss,
    gradIdx.map((i) => xs[i]!),
  );
  const gg = await compile(Object.fromEntries(gs.map((t, k) => [`g${k}`, t])), { cache: false });
  const gotGrads = await gg.run(Object.fromEntries(gg.inputs.map((i) => [i.name, feeds[i.name]!])));
  const xsRef = values.map((v) => ref(v.shape, v.data as Float32Array));
  const rFloat = ref(r.shape, Float32Array.from(r.data));
  const expected = c.expectGrad?.(xsRef, rFloat);
  gradIdx.forEach((i, k) => {
    const want = expected ? expected[i]!.data : finiteDiff(out, rFloat, xsRef, i);
    const got = Array.from(gotGrads[`g${k}`]!.data as Float32Array, Number);
    const err = maxRelErr(got, want);
    assert.ok(
      err <= (c.gradTol ?? 2e-4),
      `${c.name}: gradient of input ${i} error ${err.toExponential(2)}\n got ${got.slice(0, 6)}\n want ${Array.from(want).slice(0, 6)}`,
    );
  });
}

/** ∂(Σ out·r)/∂x_i by central differences on the float64 reference. */
function finiteDiff(out: Tensor, r: RefArray, xs: RefArray[], i: number, h = 1e-6): Float64Array {
  const feedsOf = (x: RefArray) => Object.fromEntries(xs.map((v, k) => [`x${k}`, k === i ? x : v]));
  const f = (x: RefArray) => {
    const [y] = evaluateRef([out], feedsOf(x));
    return y!.data.reduce((s, v, k) => s + v * r.data[k]!, 0);
  };
  const base = xs[i]!;
  const d = new Float64Array(base.data.length);
  for (let k = 0; k < d.length; k++) {
    const plus = ref(base.shape, base.data);
    const minus = ref(base.shape, base.data);
    plus.data[k]! += h;
    minus.data[k]! -= h;
    d[k] = (f(plus) - f(minus)) / (2 * h);
  }
  return d;
}
