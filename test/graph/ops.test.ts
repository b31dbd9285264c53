/** Every primitive, forward and backward, against the float64 reference (one row per op). */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mapRef, type RefArray } from '../../src/graph/ndarray.js';
import { gelu, layerNorm } from '../../src/graph/nn.js';
import { OPS, type OpName } from '../../src/graph/ops.js';
import type { Shape } from '../../src/graph/shape.js';
import { apply, concat, cond, pad, type Tensor, where } from '../../src/graph/tensor.js';
import { Rng } from '../../src/util/math.js';
import { checkOp, type InputSpec, type OpCase } from '../helpers/check.js';

const positive = (r: Rng) => 0.5 + 2 * r.uniform();
const awayFromHalf = (r: Rng) => Math.floor(8 * r.uniform() - 4) + 0.1 + 0.8 * r.uniform();
const f = (...shape: number[]): InputSpec => ({ shape });

/** Two shapes that broadcast: b drops leading axes of a and sets some dims to 1. */
function broadcastPair(seed: number): [Shape, Shape] {
  const r = new Rng(seed);
  const rank = 1 + Math.floor(r.uniform() * 3);
  const a = Array.from({ length: rank }, () => 1 + Math.floor(r.uniform() * 4));
  const b = a.slice(Math.floor(r.uniform() * rank)).map((d) => (r.uniform() < 0.3 ? 1 : d));
  return r.uniform() < 0.5 ? [a, b] : [b.length ? b : [1], a];
}

const identityGrad = (xs: RefArray[], r: RefArray) => xs.map(() => r);

/** Rows keyed by op; several rows per op where shapes matter. */
const CASES: Record<Exclude<OpName, 'input' | 'param' | 'constant'>, OpCase[]> = {
  neg: [{ name: 'neg', inputs: [f(3, 4)], build: (x) => x.neg() }],
  exp: [{ name: 'exp', inputs: [f(3, 4)], build: (x) => x.exp() }],
  log: [{ name: 'log', inputs: [{ shape: [3, 4], gen: positive }], build: (x) => x.log() }],
  sqrt: [{ name: 'sqrt', inputs: [{ shape: [3, 4], gen: positive }], build: (x) => x.sqrt() }],
  abs: [{ name: 'abs', inputs: [f(3, 4)], build: (x) => x.abs() }],
  sign: [
    {
      name: 'sign',
      inputs: [f(3, 4)],
      build: (x) => x.sign(),
      expectGrad: (xs) => xs.map((x) => mapRef(x, () => 0)),
    },
  ],
  tanh: [{ name: 'tanh', inputs: [f(3, 4)], build: (x) => x.tanh() }],
  erf: [{ name: 'erf', inputs: [f(3, 4)], build: (x) => x.erf() }],
  round: [
    {
      name: 'round (straight-through)',
      inputs: [{ shape: [3, 4], gen: awayFromHalf }],
      build: (x) => x.round(),
      expectGrad: identityGrad,
    },
  ],
  floor: [
    {
      name: 'floor (straight-through)',
      inputs: [{ shape: [3, 4], gen: awayFromHalf }],
      build: (x) => x.floor(),
      expectGrad: identityGrad,
    },
  ],
  stopGradient: [
    {
      name: 'stopGradient',
      inputs: [f(3, 4)],
      build: (x) => x.detach(),
      expectGrad: (xs) => xs.map((x) => mapRef(x, () => 0)),
    },
  ],
  gelu: [
    { name: 'gelu exact', inputs: [f(3, 5)], build: (x) => gelu(x) },
    { name: 'gelu tanh', inputs: [f(3, 5)], build: (x) => gelu(x, 'tanh') },
  ],
  clip: [{ name: 'clip', inputs: [f(4, 5)], build: (x) => x.clip(-0.5, 0.7) }],
  rangeClip: [
    {
      // x in ±2 against ranges 0.5..1.5 per row: inside, x gets g and r nothing; beyond +r, r
      // gets min(g, 0); beyond −r, r gets −max(g, 0) (only what asks for a wider range)
      name: 'rangeClip (learned input range: clipping only grows the range)',
      inputs: [
        { shape: [3, 4], gen: (r) => 4 * r.uniform() - 2 },
        { shape: [3, 1], gen: (r) => 0.5 + r.uniform() },
      ],
      build: (x, r) => x.rangeClip(r),
      expectGrad: ([x, r], g) => {
        const gx = x!.data.map((v, i) => {
          const b = r!.data[Math.floor(i / 4)]!;
          return v < b && v > -b ? g.data[i]! : 0;
        });
        const gr = r!.data.map((b, row) => {
          let s = 0;
          for (let j = 0; j < 4; j++) {
            const v = x!.data[row * 4 + j]!;
            const gi = g.data[row * 4 + j]!;
            if (v >= b) s += Math.min(gi, 0);
            if (v <= -b) s -= Math.max(gi, 0);
          }
          return s;
        });
        return [
          { shape: x!.shape, data: gx },
          { shape: r!.shape, data: gr },
        ];
      },
    },
  ],
  quantize: [
    {
      // codes of −4.9…3.9 clipped to ±2: straight-through inside ±2.5, zero gradient beyond
      name: 'quantize (round half to even, clip; straight-through inside the range)',
      inputs: [{ shape: [4, 6], gen: awayFromHalf }],
      build: (x) => x.quantize(2),
      expectGrad: ([x], r) => [
        { shape: x!.shape, data: x!.data.map((v, i) => (Math.abs(v) > 2.5 ? 0 : r.data[i]!)) },
      ],
    },
    {
      // codes of −3.9…3.9 within ±4: the clip is left out of the lowering and would change nothing
      name: 'quantize with codes known in range (round half to even, no clip)',
      inputs: [{ shape: [4, 6], gen: awayFromHalf }],
      build: (x) => x.quantize(4, true),
      expectGrad: identityGrad,
    },
  ],
  cast: [
    {
      name: 'cast float→int32',
      inputs: [{ shape: [6], gen: awayFromHalf }],
      build: (x) => x.cast('int32').cast('float32'),
      expectGrad: (xs) => xs.map((x) => mapRef(x, () => 0)),
    },
    {
      name: 'cast int32→float',
      inputs: [{ shape: [6], dtype: 'int32', gen: (r) => Math.floor(10 * r.uniform()) - 5 }],
      build: (x) => x.cast('float32'),
    },
  ],
  add: [{ name: 'add', inputs: [f(2, 3, 4), f(3, 1)], build: (a, b) => a.add(b) }],
  sub: [{ name: 'sub', inputs: [f(3, 1), f(2, 3, 4)], build: (a, b) => a.sub(b) }],
  mul: [{ name: 'mul', inputs: [f(2, 3, 4), f(4)], build: (a, b) => a.mul(b) }],
  div: [{ name: 'div', inputs: [f(2, 3, 4), { shape: [3, 1], gen: positive }], build: (a, b) => a.div(b) }],
  pow: [
    {
      name: 'pow',
      inputs: [
        { shape: [2, 3], gen: positive },
        { shape: [3], gen: (r) => 3 * r.uniform() - 1.5 },
      ],
      build: (a, b) => a.pow(b),
    },
  ],
  maximum: [{ name: 'maximum', inputs: [f(2, 3, 4), f(3, 4)], build: (a, b) => a.maximum(b) }],
  minimum: [{ name: 'minimum', inputs: [f(3, 4), f(2, 1, 4)], build: (a, b) => a.minimum(b) }],
  less: [{ name: 'less', inputs: [f(3, 4), f(4)], build: (a, b) => a.less(b).cast('float32') }],
  greater: [{ name: 'greater', inputs: [f(3, 4), f(3, 1)], build: (a, b) => a.greater(b).cast('float32') }],
  equal: [
    {
      name: 'equal',
      inputs: [
        { shape: [3, 4], dtype: 'int32', gen: (r) => Math.floor(3 * r.uniform()) },
        { shape: [4], dtype: 'int32', gen: (r) => Math.floor(3 * r.uniform()) },
      ],
      build: (a, b) => a.equal(b).cast('float32'),
    },
  ],
  where: [{ name: 'where', inputs: [f(3, 4), f(3, 4), f(4)], build: (c, a, b) => where(c.greater(0), a, b) }],
  cond: [
    {
      name: 'cond taking the first branch',
      inputs: [{ shape: [3], gen: positive }, f(2, 3), f(2, 3)],
      build: (c, a, b) => cond(c.sum().greater(0), a.exp().mul(a), b.mul(2)),
    },
    {
      name: 'cond taking the second branch',
      inputs: [{ shape: [3], gen: (r) => -positive(r) }, f(2, 3), f(2, 3)],
      build: (c, a, b) => cond(c.sum().greater(0), a.exp().mul(a), b.mul(2)),
    },
    {
      name: 'cond nested, sharing values across scopes',
      inputs: [{ shape: [1, 1], gen: positive }, f(2, 3), f(2, 3)],
      build: (c, a, b) => {
        const shared = a.mul(b);
        const inner = cond(c.greater(1.5), shared.exp(), shared.tanh().add(b));
        return cond(c.greater(0.6), inner.add(shared), b.mul(2));
      },
    },
  ],
  sum: [
    { name: 'sum axis', inputs: [f(2, 3, 4)], build: (x) => x.sum(1) },
    { name: 'sum keepdims', inputs: [f(2, 3, 4)], build: (x) => x.sum([0, 2], true) },
    { name: 'sum all', inputs: [f(2, 3, 4)], build: (x) => x.sum() },
  ],
  mean: [{ name: 'mean', inputs: [f(2, 3, 4)], build: (x) => x.mean([-1]) }],
  max: [{ name: 'max', inputs: [f(2, 3, 4)], build: (x) => x.max(1, true) }],
  min: [{ name: 'min', inputs: [f(2, 3, 4)], build: (x) => x.min([0, 2]) }],
  reshape: [{ name: 'reshape', inputs: [f(2, 3, 4)], build: (x) => x.reshape([4, -1]) }],
  transpose: [
    { name: 'transpose perm', inputs: [f(2, 3, 4)], build: (x) => x.transpose([2, 0, 1]) },
    { name: 'transpose last two', inputs: [f(2, 3, 4)], build: (x) => x.transpose() },
  ],
  expand: [{ name: 'expand', inputs: [f(3, 1)], build: (x) => x.expand([2, 3, 4]) }],
  concat: [{ name: 'concat', inputs: [f(2, 3), f(2, 1), f(2, 2)], build: (a, b, c) => concat([a, b, c], 1) }],
  slice: [{ name: 'slice', inputs: [f(4, 5)], build: (x) => x.slice(1, 1, -1).slice(0, 2, 4) }],
  pad: [{ name: 'pad', inputs: [f(2, 3)], build: (x) => pad(x, [1, 0], [0, 2]) }],
  gather: [
    {
      name: 'gather rows (embedding)',
      inputs: [f(5, 3), { shape: [2, 3], dtype: 'int32', gen: (r) => Math.floor(5 * r.uniform()) }],
      build: (t, i) => t.gather(i),
    },
    {
      name: 'gather axis 1',
      inputs: [f(2, 4, 3), { shape: [2], dtype: 'int32', gen: (r) => Math.floor(4 * r.uniform()) }],
      build: (t, i) => t.gather(i, 1),
    },
  ],
  scatterAdd: [
    {
      name: 'scatterAdd',
      inputs: [{ shape: [4], dtype: 'int32', gen: (r) => Math.floor(3 * r.uniform()) }, f(4, 2)],
      build: (i, u) => apply('scatterAdd', [i, u], { shape: [3, 2] }),
    },
  ],
  matmul: [
    { name: 'matmul 2D', inputs: [f(3, 4), f(4, 5)], build: (a, b) => a.matmul(b) },
    { name: 'matmul batch × weight', inputs: [f(2, 3, 4), f(4, 5)], build: (a, b) => a.matmul(b) },
    { name: 'matmul broadcast batch', inputs: [f(2, 1, 3, 4), f(3, 4, 2)], build: (a, b) => a.matmul(b) },
  ],
  softmax: [
    { name: 'softmax', inputs: [f(2, 3, 5)], build: (x) => x.softmax(-1) },
    { name: 'softmax axis 1', inputs: [f(2, 3, 5)], build: (x) => x.softmax(1) },
  ],
  logSoftmax: [{ name: 'logSoftmax', inputs: [f(3, 5)], build: (x) => x.logSoftmax(-1) }],
  layerNorm: [
    { name: 'layerNorm', inputs: [f(2, 3, 6), f(6), f(6)], build: (x, w, b) => layerNorm(x, w, b, 1e-5) },
  ],
  randomNormal: [],
  randomUniform: [],
  noise: [],
  host: [], // runs outside ONNX Runtime: test/runtime/segments.test.ts
};

describe('ops: forward and gradient against the float64 reference', () => {
  for (const [op, rows] of Object.entries(CASES)) {
    for (const row of rows) it(`${op}: ${row.name}`, () => checkOp(row));
  }
});

describe('elementwise ops on random broadcasting shapes', () => {
  const binaries: [string, (a: Tensor, b: Tensor) => Tensor, InputSpec['gen']?][] = [
    ['add', (a, b) => a.add(b)],
    ['sub', (a, b) => a.sub(b)],
    ['mul', (a, b) => a.mul(b)],
    ['div', (a, b) => a.div(b.abs().add(0.5))],
    ['pow', (a, b) => a.pow(b), positive],
    ['maximum', (a, b) => a.maximum(b)],
    ['minimum', (a, b) => a.minimum(b)],
  ];
  for (const [name, build, gen] of binaries) {
    for (const seed of [11, 12, 13]) {
      const [sa, sb] = broadcastPair(seed * 7 + name.length);
      it(`${name} ${JSON.stringify(sa)} ⊕ ${JSON.stringify(sb)}`, () =>
        checkOp({ name, inputs: [{ shape: sa, ...(gen ? { gen } : {}) }, { shape: sb }], build }, seed));
    }
  }
});

describe('the op table', () => {
  it('has test rows for every op that is not a leaf or a random source', () => {
    const untested = (Object.keys(OPS) as OpName[]).filter(
      (op) =>
        !('leaf' in OPS[op]) &&
        !op.startsWith('random') &&
        op !== 'host' &&
        !(CASES as Record<string, OpCase[]>)[op]?.length,
    );
    assert.deepEqual(untested, []);
  });
});

describe('cond', () => {
  it('runs only the branch taken: an out-of-range gather in the other branch never executes', async () => {
    const { compile } = await import('../../src/runtime/session.js');
    const { constant, input } = await import('../../src/graph/tensor.js');
    const { hostArray } = await import('../../src/graph/ndarray.js');
    const x = input('x', [4]);
    const bad = x.gather(constant(hostArray('int32', [1], Int32Array.of(9))), 0).expand([4]);
    const out = cond(x.sum().greater(0), x.mul(2), bad);
    const g = await compile({ out }, { cache: false });
    const got = await g.run({ x: hostArray('float32', [4], Float32Array.of(1, 2, 3, 4)) });
    assert.deepEqual(Array.from(got['out']!.data as Float32Array), [2, 4, 6, 8]);
    await assert.rejects(g.run({ x: hostArray('float32', [4], Float32Array.of(-1, -2, -3, -4)) }));
  });
});

describe('cond lowering', () => {
  it('keeps views of outer values out of the branches and takes a view of two results after the If', async () => {
    const { input } = await import('../../src/graph/tensor.js');
    const { lowerToOnnx } = await import('../../src/graph/onnx.js');
    const { ModelProto } = await import('../../src/graph/onnx-schema.js');
    const x = input('x', [2, 6]);
    const flag = x.sum().greater(0);
    const out = cond(
      flag,
      x.reshape([3, 4]).mul(2).reshape([4, 3]),
      x.reshape([3, 4]).mul(3).reshape([4, 3]),
    );
    assert.equal(out.op, 'reshape'); // the view of the If's result, not a result that is a view
    const m = ModelProto.decode(lowerToOnnx({ out }).model) as unknown as {
      graph: { node: { opType: string; attribute: { g?: { node: { opType: string }[] } }[] }[] };
    };
    const main = m.graph.node.map((n) => n.opType);
    const branches = m.graph.node
      .filter((n) => n.opType === 'If')
      .flatMap((n) => n.attribute.flatMap((a) => a.g?.node.map((b) => b.opType) ?? []));
    assert.equal(main.filter((t) => t === 'Reshape').length, 3); // two views of x, one of the If
    assert.deepEqual(branches, ['Mul', 'Mul']); // each writes the branch's output itself
  });
});

describe('broadcast lowering', () => {
  it('gives a scalar constant the rank of an output whose last axis is 1, keeps others, and emits no unused initializer', async () => {
    const { compile } = await import('../../src/runtime/session.js');
    const { input, scalar } = await import('../../src/graph/tensor.js');
    const { hostArray } = await import('../../src/graph/ndarray.js');
    const { lowerToOnnx } = await import('../../src/graph/onnx.js');
    const { ModelProto } = await import('../../src/graph/onnx-schema.js');
    const small = input('small', [2, 3, 1]); // per-vector values, as DAC ranges are
    const wide = input('wide', [2, 3]);
    const outs = {
      a: small.add(scalar(2)),
      b: scalar(1).div(small.maximum(scalar(0.5))),
      c: wide.mul(scalar(3)), // last axis 3: ONNX Runtime is fast with a scalar there
    };
    const m = ModelProto.decode(lowerToOnnx(outs).model) as unknown as {
      graph: { node: { input: string[] }[]; initializer: { name: string; dims: number[] }[] };
    };
    const dims = new Map(m.graph.initializer.map((i) => [i.name, i.dims.map(Number)]));
    const read = new Set(m.graph.node.flatMap((n) => n.input));
    assert.deepEqual(
      [...dims.keys()].filter((k) => !read.has(k)),
      [],
      'every initializer is read by a node',
    );
    assert.deepEqual(
      [...dims.values()].map((d) => d.join('x')).sort(),
      ['', '1x1x1', '1x1x1', '1x1x1'], // 2, 1 and 0.5 given rank 3; the scalar 3 as it is
    );
    // the same values as NumPy broadcasting gives
    const g = await compile(outs, { cache: false });
    const got = await g.run({
      small: hostArray('float32', [2, 3, 1], Float32Array.of(0.25, 1, 2, -1, 4, 0.5)),
      wide: hostArray('float32', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6)),
    });
    assert.deepEqual(Array.from(got['a']!.data as Float32Array), [2.25, 3, 4, 1, 6, 2.5]);
    assert.deepEqual(Array.from(got['b']!.data as Float32Array), [2, 1, 0.5, 2, 0.25, 2]);
    assert.deepEqual(Array.from(got['c']!.data as Float32Array), [3, 6, 9, 12, 15, 18]);
  });
});
