/**
 * Graphs with host kernels run as chains of ONNX sessions around them: the same values as the
 * all-ONNX graph, kernels fed leaves and values of any level, one noise window per run shared
 * by every reader, sessions and noise streams reused by structure, and no gradients through.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/autodiff.js';
import { f32, type HostArray, toNumbers } from '../../src/graph/ndarray.js';
import { constant, hostCall, input, noise, param, type Tensor } from '../../src/graph/tensor.js';
import { compile, sessionCount } from '../../src/runtime/session.js';

/** A host kernel squaring its input and adding its second (broadcast scalar or same shape). */
const squarePlus = (x: Tensor, y: Tensor): Tensor =>
  hostCall('squarePlus', [x, y], x.shape, ([a, b]) => {
    const out = new Float32Array(a!.data.length);
    const bd = b!.data as Float32Array;
    for (let i = 0; i < out.length; i++) out[i] = (a!.data[i] as number) ** 2 + bd[bd.length === 1 ? 0 : i]!;
    return { dtype: 'float32', shape: a!.shape, data: out };
  });

describe('graphs with host kernels', () => {
  it('compute what the all-ONNX graph computes, through chains of kernels and values crossing levels', async () => {
    const x = input('x', [2, 3]);
    const w = param('w', f32([3, 3], [1, 2, 0, -1, 0.5, 1, 0, 1, -2]));
    const c = constant(f32([1], [0.25]));
    const build = (k: (a: Tensor, b: Tensor) => Tensor) => {
      const h = x.matmul(w); // level 0
      const k1 = k(h, c); // a kernel on a level-0 value and a constant
      const k2 = k(k1, w.sum(0, true).expand([2, 3])); // kernel on a kernel's output
      const mixed = k2.add(h).mul(x); // level 2 reads level-0 values (h, x) again
      return { y: k(mixed, param('b', f32([1], [-1]))), early: h.neg(), k1 };
    };
    const onnx = build((a, b) => a.mul(a).add(b));
    const hosted = build(squarePlus);
    const feeds = { x: f32([2, 3], [0.5, -1, 2, 0, 1, -0.5]) };
    const want = await (await compile(onnx)).run(feeds);
    const g = await compile(hosted);
    assert.deepEqual(g.inputs.map((i) => i.name).sort(), ['b', 'w', 'x']);
    const got = await g.run(feeds);
    for (const name of ['y', 'early', 'k1'])
      assert.deepEqual(toNumbers(got[name]!), toNumbers(want[name]!), name);
    // params are read at every run, also by kernels
    ((w.attrs as { value: HostArray }).value.data as Float32Array).set([0, 0, 0, 0, 0, 0, 0, 0, 1]);
    const w2 = await (await compile(onnx)).run(feeds);
    assert.deepEqual(toNumbers((await g.run(feeds)).y!), toNumbers(w2.y!));
  });

  it('give a kernel and a graph that read one noise leaf the same values, and the next samples’ next run', async () => {
    const z = noise([2, 64], { seed: 9, batchAxis: 0, batch: 2 });
    const g = await compile({ viaKernel: squarePlus(z, constant(f32([1], [0]))), direct: z.mul(z) });
    const first = await g.run();
    assert.deepEqual(toNumbers(first.viaKernel!), toNumbers(first.direct!));
    const second = await g.run({}, 2);
    assert.deepEqual(toNumbers(second.viaKernel!), toNumbers(second.direct!));
    assert.notDeepEqual(toNumbers(second.direct!), toNumbers(first.direct!));
    assert.deepEqual(
      toNumbers((await g.run({}, 1)).direct!).slice(0, 64),
      toNumbers(first.direct!).slice(64),
    );
  });

  it('reuse the sessions of an earlier compile of the same structure, with the same noise', async () => {
    const build = () => {
      const z = noise([1, 8], { seed: 4, batchAxis: 0, batch: 1 });
      return { y: squarePlus(input('a', [1, 8]).add(z), constant(f32([1], [1]))).mul(2) };
    };
    const feeds = { a: f32([1, 8], new Float32Array(8)) };
    const before = sessionCount();
    const g1 = await compile(build());
    const r1 = toNumbers((await g1.run(feeds)).y!);
    const g2 = await compile(build());
    assert.equal(sessionCount() - before, 2); // the level before the kernel and the one after
    assert.deepEqual(toNumbers((await g2.run(feeds)).y!), r1);
    assert.notDeepEqual(toNumbers((await g2.run(feeds, 1)).y!), r1);
  });

  it('let a kernel reuse its buffer of the last run, except for results, and run one at a time', async () => {
    const reused: boolean[] = [];
    // doubles x into `reuse` when given (recording that it was), else into a new array
    const double = (x: Tensor, name: string) =>
      hostCall(name, [x], x.shape, ([a], reuse) => {
        if (name === 'inner') reused.push(reuse !== undefined);
        const out = (reuse as Float32Array | undefined) ?? new Float32Array(a!.data.length);
        for (let i = 0; i < out.length; i++) out[i] = 2 * (a!.data[i] as number);
        return { dtype: 'float32', shape: a!.shape, data: out };
      });
    const x = input('x', [3]);
    const g = await compile({ result: double(x, 'result'), later: double(x, 'inner').add(1) });
    const first = await g.run({ x: f32([3], [1, 2, 3]) });
    const second = await g.run({ x: f32([3], [10, 20, 30]) });
    assert.deepEqual(toNumbers(first.result!), [2, 4, 6]); // a result is never written again
    assert.deepEqual(toNumbers(second.result!), [20, 40, 60]);
    assert.deepEqual(toNumbers(second.later!), [21, 41, 61]);
    assert.deepEqual(reused, [false, true]);
    // concurrent runs share the buffers, so they queue: each gets its own numbers
    const [a, b] = await Promise.all([g.run({ x: f32([3], [1, 1, 1]) }), g.run({ x: f32([3], [5, 5, 5]) })]);
    assert.deepEqual(toNumbers(a.later!), [3, 3, 3]);
    assert.deepEqual(toNumbers(b.later!), [11, 11, 11]);
  });

  it('refuse unknown inputs and gradients through a kernel', async () => {
    const x = input('x', [3]);
    const y = squarePlus(x, constant(f32([1], [0])));
    const g = await compile({ y: y.add(1) });
    await assert.rejects(g.run({ x: f32([3], [1, 2, 3]), nope: f32([1], [0]) }), /unknown input\(s\) 'nope'/);
    const w = param('w', f32([3], [1, 2, 3]));
    assert.throws(
      () => grad(squarePlus(w, constant(f32([1], [0]))).sum(), [w]),
      /'squarePlus' runs outside the graph and has no gradient/,
    );
  });
});
