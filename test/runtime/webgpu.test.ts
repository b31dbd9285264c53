/**
 * The WebGPU runtime against the float64 reference interpreter: every op on small, odd shapes
 * (broadcast inputs, fused chains, reductions over any axes), random sources, host kernels,
 * params, and gradients of a small network.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/autodiff.js';
import { f32, type HostArray, hostArray, i32, toNumbers } from '../../src/graph/ndarray.js';
import { evaluateRef } from '../../src/graph/reference.js';
import type { DType, Shape } from '../../src/graph/shape.js';
import {
  apply,
  concat,
  cond,
  hostCall,
  input,
  noise,
  pad,
  param,
  randomNormal,
  randomUniform,
  scalar,
  type Tensor,
  where,
} from '../../src/graph/tensor.js';
import { compile } from '../../src/runtime/session.js';
import { parseAdapters } from '../../src/runtime/webgpu/device.js';
import { planGraph } from '../../src/runtime/webgpu/plan.js';
import { Rng } from '../../src/util/math.js';
import { fillNoise, noiseLayout } from '../../src/util/philox.js';
import { maxRelErr } from '../helpers/check.js';
import { webgpuSkip } from '../helpers/webgpu.js';

const skip = webgpuSkip;
const gpu = { provider: 'webgpu' } as const;

interface Spec {
  shape: Shape;
  dtype?: DType;
  gen?: (r: Rng, i: number) => number;
}

const normal = (r: Rng) => r.normal();
const positive = (r: Rng) => 0.1 + Math.abs(r.normal());
const wide = (r: Rng) => 8 * r.normal();
const halves = (_r: Rng, i: number) => (i % 13) / 2 - 3;
const bits = (_r: Rng, i: number) => ((i * 7) % 3 === 0 ? 1 : 0);
const ints = (_r: Rng, i: number) => ((i * 5) % 11) - 5;

function values(specs: readonly Spec[], seed: number): HostArray[] {
  const r = new Rng(seed);
  return specs.map((s) => {
    const a = hostArray(s.dtype ?? 'float32', s.shape);
    const gen = s.gen ?? normal;
    for (let i = 0; i < a.data.length; i++) (a.data as Float32Array)[i] = gen(r, i);
    return a;
  });
}

/** Runs `build` on the GPU and on the reference; returns max |Δ| / max(1, |ref|∞) per output. */
async function errors(
  specs: readonly Spec[],
  build: (...xs: Tensor[]) => Tensor | Tensor[],
): Promise<number[]> {
  const xs = specs.map((s, k) => input(`x${k}`, s.shape, s.dtype ?? 'float32'));
  const built = build(...xs);
  const outs = Array.isArray(built) ? built : [built];
  const feeds = Object.fromEntries(values(specs, 7).map((v, k) => [`x${k}`, v]));
  const g = await compile(Object.fromEntries(outs.map((o, k) => [`y${k}`, o])), gpu);
  const got = await g.run(feeds);
  const want = evaluateRef(outs, feeds);
  return outs.map((o, k) => {
    const y = got[`y${k}`]!;
    assert.deepEqual(y.shape, o.shape, 'output shape');
    assert.equal(y.dtype, o.dtype, 'output dtype');
    return maxRelErr(toNumbers(y), want[k]!.data);
  });
}

type Case = [name: string, specs: Spec[], build: (...xs: Tensor[]) => Tensor, tol?: number];

async function checkAll(cases: readonly Case[]): Promise<void> {
  const bad: string[] = [];
  for (const [name, specs, build, tol = 2e-6] of cases) {
    const [err] = await errors(specs, build);
    if (!(err! <= tol)) bad.push(`${name}: error ${err}`);
  }
  assert.deepEqual(bad, []);
}

const A: Spec = { shape: [3, 5] };

describe('WebGPU runtime: elementwise ops against the reference', { skip }, () => {
  it('unary ops, odd sizes', () =>
    checkAll([
      ['neg', [A], (x) => x.neg()],
      ['exp', [A], (x) => x.exp(), 4e-6],
      ['log', [{ shape: [3, 5], gen: positive }], (x) => x.log(), 4e-6],
      ['sqrt', [{ shape: [7], gen: positive }], (x) => x.sqrt()],
      ['abs', [A], (x) => x.abs()],
      ['sign', [{ shape: [13], gen: halves }], (x) => x.sign()],
      ['tanh', [{ shape: [3, 5], gen: wide }], (x) => x.tanh(), 4e-6],
      ['erf', [{ shape: [41], gen: (_r, i) => i / 5 - 4 }], (x) => x.erf(), 1e-6],
      ['round (half to even)', [{ shape: [13], gen: halves }], (x) => x.round(), 0],
      ['floor', [{ shape: [13], gen: halves }], (x) => x.floor(), 0],
      ['gelu', [{ shape: [3, 5], gen: wide }], (x) => apply('gelu', [x], { approximate: 'none' }), 4e-6],
      ['gelu tanh', [{ shape: [3, 5], gen: wide }], (x) => apply('gelu', [x], { approximate: 'tanh' }), 4e-6],
      ['clip', [A], (x) => x.clip(-0.5, 0.7)],
      ['clip to [0, ∞)', [A], (x) => x.clip(0, Infinity)],
      ['quantize', [{ shape: [3, 5], gen: wide }], (x) => x.quantize(3), 0],
      ['quantize in range', [{ shape: [13], gen: halves }], (x) => x.quantize(7, true), 0],
      [
        'rangeClip',
        [
          { shape: [3, 5], gen: wide },
          { shape: [5], gen: positive },
        ],
        (x, r) => x.rangeClip(r!),
      ],
      ['stopGradient', [A], (x) => x.detach()],
      ['cast float→int32', [{ shape: [13], gen: halves }], (x) => x.cast('int32'), 0],
      ['cast int32→float', [{ shape: [11], dtype: 'int32', gen: ints }], (x) => x.cast('float32'), 0],
      ['cast float→bool→float', [{ shape: [13], gen: halves }], (x) => x.cast('bool').cast('float32'), 0],
    ]));

  it('binary ops with NumPy broadcasting', () => {
    const a: Spec = { shape: [2, 1, 5] };
    const b: Spec = { shape: [3, 1] };
    return checkAll([
      ['add', [a, b], (x, y) => x.add(y!)],
      ['sub', [a, b], (x, y) => x.sub(y!)],
      ['mul', [a, b], (x, y) => x.mul(y!)],
      ['div', [a, { shape: [3, 1], gen: positive }], (x, y) => x.div(y!), 4e-6],
      ['pow', [{ shape: [2, 1, 5], gen: positive }, b], (x, y) => x.pow(y!), 1e-5],
      [
        'pow of negatives by whole numbers',
        [{ shape: [13], gen: halves }],
        (x) => x.pow(3).add(x.pow(2)),
        1e-6,
      ],
      ['maximum', [a, b], (x, y) => x.maximum(y!)],
      ['minimum', [a, b], (x, y) => x.minimum(y!)],
      ['less', [a, b], (x, y) => x.less(y!), 0],
      ['greater', [a, b], (x, y) => x.greater(y!), 0],
      [
        'equal (int32)',
        [
          { shape: [11], dtype: 'int32', gen: ints },
          { shape: [1], dtype: 'int32' },
        ],
        (x, y) => x.equal(y!),
        0,
      ],
      ['int32 arithmetic', [{ shape: [11], dtype: 'int32', gen: ints }], (x) => x.mul(x).sub(3), 0],
      ['where', [{ shape: [3, 1], dtype: 'bool', gen: bits }, a, b], (c, x, y) => where(c!, x!, y!)],
      ['expand', [{ shape: [3, 1] }], (x) => x.expand([2, 3, 4])],
      ['scalar of rank 0', [A], (x) => x.add(scalar(2.5)).mul(input('x0', [3, 5]))],
    ]);
  });

  it('fuses a chain of elementwise ops with broadcast inputs into one kernel', async () => {
    const build = (x: Tensor, b: Tensor, c: Tensor) =>
      x
        .mul(2)
        .add(b)
        .reshape([4, 1, 7])
        .sub(c.reshape([4, 1, 1]))
        .tanh()
        .mul(x.reshape([4, 1, 7]).abs())
        .clip(-3, 3);
    const specs: Spec[] = [{ shape: [4, 7] }, { shape: [7] }, { shape: [4, 1] }];
    const xs = specs.map((s, k) => input(`x${k}`, s.shape));
    const plan = planGraph([build(xs[0]!, xs[1]!, xs[2]!)], 7);
    assert.equal(plan.steps.length, 1, 'one kernel');
    const [err] = await errors(specs, (x, b, c) => build(x!, b!, c!));
    assert.ok(err! <= 4e-6, `error ${err}`);
  });

  it('computes a smaller chain that one op reads broadcast in that op’s kernel, per element', async () => {
    const specs: Spec[] = [{ shape: [4, 7] }, { shape: [4, 1] }, { shape: [7] }];
    const build = (x: Tensor, c: Tensor, b: Tensor) =>
      x
        .mul(c.exp().add(1).reshape([4, 1]))
        .add(b.tanh().mul(2))
        .sum(-1);
    const xs = specs.map((s, k) => input(`x${k}`, s.shape));
    assert.equal(planGraph([build(xs[0]!, xs[1]!, xs[2]!)], 7).steps.length, 1, 'one kernel');
    const [err] = await errors(specs, (x, c, b) => build(x!, c!, b!));
    assert.ok(err! <= 4e-6, `error ${err}`);
    // read by two ops: a kernel of its own
    const [x, c] = xs;
    const e = c!.exp();
    assert.equal(planGraph([x!.mul(e).sub(x!.add(e).exp())], 7).steps.length, 2);
  });

  it('computes a chain inside the reduction, softmax, transpose or slice that reads it', async () => {
    const specs: Spec[] = [{ shape: [4, 6] }, { shape: [6] }];
    const sinks: ((h: Tensor) => Tensor)[] = [
      (h) => h.abs().max(-1),
      (h) => h.mul(0.3).softmax(-1),
      (h) => h.reshape([4, 2, 3]).transpose([1, 2, 0]),
      (h) => h.slice(1, 2, 5),
      (h) => h.sum(0),
    ];
    for (const sink of sinks) {
      const build = (x: Tensor, b: Tensor) => sink(x.add(b).tanh());
      const xs = specs.map((s, k) => input(`x${k}`, s.shape));
      assert.equal(planGraph([build(xs[0]!, xs[1]!)], 7).steps.length, 1, `one kernel: ${sink}`);
      const [err] = await errors(specs, (x, b) => build(x!, b!));
      assert.ok(err! <= 4e-6, `${sink}: error ${err}`);
    }
  });

  it('reduces max(max x, −min x) as one max of |x|, x read once and its chain inside', async () => {
    const specs: Spec[] = [{ shape: [4, 6] }, { shape: [6] }];
    const build = (x: Tensor, b: Tensor) => {
      const h = x.add(b).tanh();
      return h.max(-1, true).maximum(h.min(-1, true).neg());
    };
    const xs = specs.map((s, k) => input(`x${k}`, s.shape));
    assert.equal(planGraph([build(xs[0]!, xs[1]!)], 7).steps.length, 1, 'one kernel');
    const [err] = await errors(specs, (x, b) => build(x!, b!));
    assert.ok(err! <= 4e-6, `error ${err}`);
    // the min also read elsewhere: two reductions as written
    const [x] = xs;
    const lo = x!.min(-1, true);
    assert.equal(planGraph([x!.max(-1, true).maximum(lo.neg()).add(lo)], 7).steps.length, 3);
  });

  it('keeps a value read by two kernels, or that is an output, in a buffer of its own', async () => {
    const specs: Spec[] = [{ shape: [5, 3] }];
    const errs = await errors(specs, (x) => {
      const h = x.mul(3).exp();
      return [h, h.sum([1]), h.add(1).log()];
    });
    assert.ok(
      errs.every((e) => e <= 4e-6),
      `errors ${errs}`,
    );
  });
});

describe('WebGPU runtime: reductions, normalisation, movement, matmul', { skip }, () => {
  it('reductions over any axes, short and long', () =>
    checkAll([
      ['sum over [0, 2], keepdims', [{ shape: [3, 4, 5] }], (x) => x.sum([0, 2], true), 4e-6],
      ['mean over 1', [{ shape: [3, 4, 5] }], (x) => x.mean(1)],
      ['max over all', [{ shape: [3, 4, 5] }], (x) => x.max()],
      ['min over 2', [{ shape: [3, 4, 5] }], (x) => x.min(2)],
      ['long sum over a strided axis', [{ shape: [3, 300, 2] }], (x) => x.sum(1), 4e-6],
      ['long mean', [{ shape: [2, 513] }], (x) => x.mean(-1), 4e-6],
      ['long max over two axes', [{ shape: [20, 3, 9] }], (x) => x.max([0, 2])],
      ['int32 sum', [{ shape: [4, 11], dtype: 'int32', gen: ints }], (x) => x.sum(1), 0],
    ]));

  it('softmax, logSoftmax and layerNorm', () =>
    checkAll([
      ['softmax over a middle axis', [{ shape: [2, 5, 3], gen: wide }], (x) => x.softmax(1)],
      ['softmax of 10', [{ shape: [4, 10] }], (x) => x.softmax()],
      ['logSoftmax of 300', [{ shape: [3, 300], gen: wide }], (x) => x.logSoftmax(), 4e-6],
      [
        'layerNorm of 7',
        [{ shape: [3, 7] }, { shape: [7] }, { shape: [7] }],
        (x, w, b) => apply('layerNorm', [x, w!, b!], { eps: 1e-5 }),
        4e-6,
      ],
      [
        'layerNorm of 300',
        [{ shape: [2, 300], gen: wide }, { shape: [300] }, { shape: [300] }],
        (x, w, b) => apply('layerNorm', [x, w!, b!], { eps: 1e-6 }),
        4e-6,
      ],
    ]));

  it('movement: transpose, concat, slice, pad, gather, scatterAdd', () => {
    const idx: Spec = { shape: [2, 3], dtype: 'int32', gen: (_r, i) => [0, -1, 2, 2, 1, -3][i]! };
    return checkAll([
      ['transpose', [{ shape: [2, 3, 4] }], (x) => x.transpose([2, 0, 1]), 0],
      [
        'concat of three',
        [{ shape: [2, 1, 3] }, { shape: [2, 4, 3] }, { shape: [2, 2, 3] }],
        (a, b, c) => concat([a, b!, c!], 1),
        0,
      ],
      ['slice', [{ shape: [4, 5, 3] }], (x) => x.slice(1, 1, 4).slice(0, 1, 3), 0],
      ['pad', [{ shape: [2, 3] }], (x) => pad(x, [1, 0], [0, 2]), 0],
      ['gather rows (negative indices)', [{ shape: [3, 4] }, idx], (d, i) => d.gather(i!, 0), 0],
      ['gather along axis 1', [{ shape: [2, 3, 2] }, idx], (d, i) => d.gather(i!, 1), 0],
      [
        'scatterAdd with repeated rows',
        [idx, { shape: [2, 3, 4] }],
        (i, u) => apply('scatterAdd', [i, u!], { shape: [3, 4] }),
        1e-6,
      ],
    ]);
  });

  it('matmul: batched, broadcast batch dims, sizes off the tile', () =>
    checkAll([
      ['[2,1,5,7] × [3,7,9]', [{ shape: [2, 1, 5, 7] }, { shape: [3, 7, 9] }], (a, b) => a.matmul(b!), 4e-6],
      ['[33,17] × [17,19]', [{ shape: [33, 17] }, { shape: [17, 19] }], (a, b) => a.matmul(b!), 4e-6],
      [
        '[2,3,5,7] × [1,7,9] (one matrix for the batch)',
        [{ shape: [2, 3, 5, 7] }, { shape: [1, 7, 9] }],
        (a, b) => a.matmul(b!),
        4e-6,
      ],
      ['[4,3] × [2,3,5]', [{ shape: [4, 3] }, { shape: [2, 3, 5] }], (a, b) => a.matmul(b!), 4e-6],
    ]));

  it('cond with branches computed in its own kernel selects one', async () => {
    for (const flag of [0, 1]) {
      const c = input('c', [1], 'bool');
      const x = input('x', [2, 3]);
      const y = cond(c, x.exp().reshape([3, 2]), x.neg().reshape([3, 2]));
      const feeds = { c: hostArray('bool', [1], Uint8Array.of(flag)), x: f32([2, 3], [1, 2, 3, -1, -2, -3]) };
      const got = (await (await compile({ y }, gpu)).run(feeds)).y!;
      assert.ok(maxRelErr(toNumbers(got), evaluateRef([y], feeds)[0]!.data) <= 4e-6, `flag ${flag}`);
    }
  });
});

describe('WebGPU runtime: random sources, host kernels, params, gradients', { skip }, () => {
  it('randomNormal and randomUniform: their moments, and a new draw at every run', async () => {
    const n = 20000;
    const g = await compile(
      {
        z: randomNormal([n], { seed: 3, mean: 1, std: 2 }),
        u: randomUniform([n], { seed: 4, low: -1, high: 3 }),
      },
      gpu,
    );
    const first = await g.run();
    const moments = (a: HostArray) => {
      const v = toNumbers(a);
      const mean = v.reduce((s, x) => s + x, 0) / n;
      return {
        mean,
        sd: Math.sqrt(v.reduce((s, x) => s + (x - mean) ** 2, 0) / n),
        min: Math.min(...v),
        max: Math.max(...v),
      };
    };
    const z = moments(first.z!);
    const u = moments(first.u!);
    // five standard errors: the standard deviation's is σ/√(2n)
    assert.ok(Math.abs(z.mean - 1) < (5 * 2) / Math.sqrt(n), `normal mean ${z.mean}`);
    assert.ok(Math.abs(z.sd - 2) < (5 * 2) / Math.sqrt(2 * n), `normal sd ${z.sd}`);
    const uSd = 4 / Math.sqrt(12);
    assert.ok(Math.abs(u.mean - 1) < (5 * uSd) / Math.sqrt(n), `uniform mean ${u.mean}`);
    assert.ok(u.min >= -1 && u.max <= 3, `uniform range ${u.min}..${u.max}`);
    const second = await g.run();
    assert.notDeepEqual(toNumbers(second.z!).slice(0, 8), toNumbers(first.z!).slice(0, 8));
  });

  it('noise: the values of util/philox.ts, keyed by the run’s first sample', async () => {
    const shape = [3, 4, 5];
    const z = noise(shape, { seed: 11, std: 0.5, batchAxis: 1, batch: 4 });
    const g = await compile({ y: z.mul(2) }, gpu);
    const want = new Float32Array(60);
    fillNoise(want, noiseLayout(shape, 1, 4), 11, 0.5, 9);
    assert.deepEqual(
      toNumbers((await g.run({}, 9)).y!),
      Array.from(want, (v) => 2 * v),
    );
  });

  it('host kernels: on the host without a WebGPU dispatch, the dispatch when given', async () => {
    const x = input('x', [2, 5]);
    const twice = (ins: readonly HostArray[]) =>
      f32(
        ins[0]!.shape,
        toNumbers(ins[0]!).map((v) => 2 * v),
      );
    const onHost = hostCall('twice', [x.add(1)], [2, 5], twice).add(x);
    const feeds = { x: f32([2, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]) };
    const want = toNumbers(feeds.x).map((v) => 2 * (v + 1) + v);
    assert.deepEqual(toNumbers((await (await compile({ y: onHost }, gpu)).run(feeds)).y!), want);
    const never = (): HostArray => {
      throw new Error('the host kernel ran');
    };
    const gpuKernel = () => ({
      code: `@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) {
  if (g.x < 10u) { out[g.x] = 2.0 * in0[g.x]; }
}`,
      inputs: 1,
      grid: [1, 1, 1] as const,
    });
    const onGpu = hostCall('twice-gpu', [x.add(1)], [2, 5], never, 'float32', false, gpuKernel).add(x);
    assert.deepEqual(toNumbers((await (await compile({ y: onGpu }, gpu)).run(feeds)).y!), want);
  });

  it('params: fed values override, in-place changes are seen, baked params are no inputs', async () => {
    const w = param('w', f32([2, 2], [1, 0, 0, 1]));
    const x = input('x', [1, 2]);
    const g = await compile({ y: x.matmul(w) }, gpu);
    const feeds = { x: f32([1, 2], [3, 4]) };
    assert.deepEqual(toNumbers((await g.run(feeds)).y!), [3, 4]);
    (w.attrs as { value: { data: Float32Array } }).value.data.set([2, 0, 0, 2]);
    assert.deepEqual(toNumbers((await g.run(feeds)).y!), [6, 8]);
    const swap = f32([2, 2], [0, 1, 1, 0]);
    assert.deepEqual(toNumbers((await g.run({ ...feeds, w: swap })).y!), [4, 3]);
    (swap.data as Float32Array).set([1, 1, 1, 1]); // the same array fed again: its upload is cached
    assert.deepEqual(toNumbers((await g.run({ ...feeds, w: swap })).y!), [4, 3]);
    assert.deepEqual(toNumbers((await g.run(feeds)).y!), [6, 8]);
    const baked = await compile({ y: x.matmul(w) }, { ...gpu, bakeParams: true });
    assert.deepEqual(
      baked.inputs.map((i) => i.name),
      ['x'],
    );
    await assert.rejects(
      g.run({ x: f32([2, 2]) }),
      /input 'x' is float32 \[2, 2\], the graph needs float32 \[1, 2\]/,
    );
  });

  it('compiles of one structure share a compiled graph, each running with its own params', async () => {
    const build = (v: number) => input('x', [1, 2]).matmul(param('w', f32([2, 2], [v, 0, 0, v])));
    const feeds = { x: f32([1, 2], [3, 4]) };
    const [a, b] = [await compile({ y: build(1) }, gpu), await compile({ y: build(2) }, gpu)];
    assert.equal(a.key, b.key);
    assert.deepEqual(toNumbers((await b.run(feeds)).y!), [6, 8]);
    assert.deepEqual(toNumbers((await a.run(feeds)).y!), [3, 4]);
    const own = await compile({ y: build(3) }, { ...gpu, cache: false });
    assert.deepEqual(toNumbers((await own.run(feeds)).y!), [9, 12]);
    await own.release();
  });

  it('gradients of a small network (gather, layerNorm, matmul, gelu, logSoftmax) as the reference', async () => {
    const r = new Rng(5);
    const rnd = (shape: number[]) =>
      f32(
        shape,
        Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => r.normal()),
      );
    const table = param('table', rnd([6, 8]));
    const gamma = param('gamma', rnd([8]));
    const beta = param('beta', rnd([8]));
    const w = param('w', rnd([8, 3]));
    const ids = input('ids', [2, 3], 'int32');
    const h = apply('layerNorm', [table.gather(ids), gamma, beta], { eps: 1e-5 });
    const logits = apply('gelu', [h.matmul(w)], { approximate: 'none' });
    const loss = logits.logSoftmax().mul(-1).mean();
    const grads = grad(loss, [table, gamma, beta, w]);
    const outs = { loss, ...Object.fromEntries(grads.map((g, k) => [`g${k}`, g])) };
    const feeds = { ids: i32([2, 3], [0, 5, 2, 2, 1, 5]) };
    const got = await (await compile(outs, gpu)).run(feeds);
    const want = evaluateRef(Object.values(outs), feeds);
    Object.keys(outs).forEach((name, k) => {
      const err = maxRelErr(toNumbers(got[name]!), want[k]!.data);
      assert.ok(err <= 1e-5, `${name}: error ${err}`);
    });
  });
});

describe('WebGPU adapters', () => {
  it("reads Dawn's list of adapters (what --gpu picks from)", () => {
    const message = `no suitable backends found
Available adapters:
 * backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3'
 * backend: 'opengles', name: 'OpenGL ES 3.2 NVIDIA 580.159.04'`;
    assert.deepEqual(parseAdapters(message), [
      { backend: 'vulkan', name: 'NVIDIA H100 80GB HBM3' },
      { backend: 'opengles', name: 'OpenGL ES 3.2 NVIDIA 580.159.04' },
    ]);
  });
});
