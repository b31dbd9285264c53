/**
 * A `cond`'s branches on the WebGPU runtime run only when taken (runtime/webgpu/branches.ts):
 * the kernels only a branch needs return at once when its condition does
 * not hold, nested conds need both conditions, and the outputs are those of the reference and
 * of both branches computed ($XBAR_GPU_BRANCHES=both). Dispatches are counted by the runtime
 * ($XBAR_GPU_PROFILE=1, `gpuDispatches`).
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec } from '../../src/analog/presets.js';
import { type HostArray, hostArray, toNumbers } from '../../src/graph/ndarray.js';
import { evaluateRef } from '../../src/graph/reference.js';
import { cond, input, param, type Tensor } from '../../src/graph/tensor.js';
import { compile, type RunnableGraph } from '../../src/runtime/session.js';
import { gpuDispatches } from '../../src/runtime/webgpu/executor.js';
import { planGraph } from '../../src/runtime/webgpu/plan.js';
import { Rng } from '../../src/util/math.js';
import { maxRelErr } from '../helpers/check.js';
import { webgpuSkip } from '../helpers/webgpu.js';

const env = (name: string, value: string | undefined) => {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
};

/** Compiles `y` for the GPU, with both branches computed where `both`, else only the taken one. */
async function gpuGraph(y: Tensor, both = false): Promise<RunnableGraph> {
  const before = process.env['XBAR_GPU_BRANCHES'];
  env('XBAR_GPU_BRANCHES', both ? 'both' : 'lazy');
  try {
    return await compile({ y }, { provider: 'webgpu', cache: false });
  } finally {
    env('XBAR_GPU_BRANCHES', before);
  }
}

/** One run's output and how many of its dispatches ran, of how many issued. */
async function counted(g: RunnableGraph, feeds: Record<string, HostArray>, firstSample = 0) {
  const before = gpuDispatches();
  const out = (await g.run(feeds, firstSample)).y!;
  const after = gpuDispatches();
  assert.equal(after.runs, before.runs + 1);
  return { y: out, ran: after.ran - before.ran, issued: after.encoded - before.encoded };
}

const matrix = (rows: number, cols: number, seed: number, scale = 1) =>
  hostArray('float32', [rows, cols], new Rng(seed).fillNormal(new Float32Array(rows * cols), 0, scale));

describe('a cond’s branches on the WebGPU runtime', { skip: webgpuSkip }, () => {
  let profile: string | undefined;
  beforeEach(() => {
    profile = process.env['XBAR_GPU_PROFILE'];
    env('XBAR_GPU_PROFILE', '1');
  });
  afterEach(() => env('XBAR_GPU_PROFILE', profile));

  const [N, K] = [16, 8];
  const w = param('w', matrix(K, K, 1, 0.3));
  /** x ± 1: the sign of x's sum decides the outer condition. */
  const feed = (sign: number, seed = 2) => {
    const x = matrix(N, K, seed, 0.1);
    for (let i = 0; i < x.data.length; i++) (x.data as Float32Array)[i] += sign;
    return { x: x };
  };

  it('runs the kernels only the taken branch needs, and gives its value', async () => {
    const x = input('x', [N, K]);
    // the then branch: a product, an exp and a product (three kernels); the else branch is
    // elementwise, computed in the select's own kernel
    const y = cond(x.sum().greater(0), x.matmul(w).exp().matmul(w), x.neg());
    const gated = planGraph([y], 8).steps.filter((s) => s.kind === 'dispatch' && s.gate).length;
    assert.equal(gated, 3);
    const g = await gpuGraph(y);
    const taken = await counted(g, feed(1));
    const skipped = await counted(g, feed(-1));
    assert.equal(taken.issued, skipped.issued);
    assert.equal(taken.ran, taken.issued);
    assert.equal(taken.ran - skipped.ran, gated);
    for (const [sign, r] of [
      [1, taken],
      [-1, skipped],
    ] as const)
      assert.ok(maxRelErr(toNumbers(r.y), evaluateRef([y], feed(sign))[0]!.data) <= 1e-5, `sign ${sign}`);
    // both branches computed: one kernel each more (no gate kernel), all run, the same values
    const both = await gpuGraph(y, true);
    const eager = await counted(both, feed(-1));
    assert.equal(eager.issued, taken.issued - 1);
    assert.equal(eager.ran, eager.issued);
    assert.deepEqual(eager.y.data, skipped.y.data);
  });

  it('nests: a kernel of the inner branch runs only when both conditions hold', async () => {
    const x = input('x', [N, K]);
    const h = x.matmul(w).exp(); // only the outer then branch needs it
    const inner = cond(h.max().greater(1.5), h.matmul(w).tanh().matmul(w), h.mul(2));
    const y = cond(x.sum().greater(0), inner, x.neg());
    const g = await gpuGraph(y);
    // outer false; outer true, inner false (x small: h near 1); both true
    const small = { x: hostArray('float32', [N, K], new Float32Array(N * K).fill(0.01)) };
    const cases = [feed(-1), small, feed(2)];
    const want = cases.map((f) => evaluateRef([y], f)[0]!.data);
    const conditions = cases.map((f) => evaluateRef([x.sum().greater(0), h.max().greater(1.5)], f));
    assert.deepEqual(
      conditions.map(([outer, inner], k) => (k === 0 ? [outer!.data[0]] : [outer!.data[0], inner!.data[0]])),
      [[0], [1, 0], [1, 1]],
      'the cases take each path',
    );
    const runs = [];
    for (const f of cases) runs.push(await counted(g, f));
    runs.forEach((r, k) => {
      assert.ok(maxRelErr(toNumbers(r.y), want[k]!) <= 1e-5, `case ${k}`);
    });
    // outer: h's product and exp, its max and the inner test (4 kernels); inner: a product, a
    // tanh and a product (3)
    assert.equal(runs[1]!.ran - runs[0]!.ran, 4);
    assert.equal(runs[2]!.ran - runs[1]!.ran, 3);
    assert.equal(runs[2]!.ran, runs[2]!.issued);
  });

  it('bound management (pcm-aihwkit): later rounds run only where a vector saturates, with the CPU’s outputs', async () => {
    const [n, inDim, outDim] = [6, 64, 32];
    const rng = new Rng(4);
    // weights near 0.6 of a device at G_MAX: a full-scale input on every row sums to ~38 in a
    // column, against the ADC's bound of 12
    const wv = hostArray(
      'float32',
      [inDim, outDim],
      rng.fillNormal(new Float32Array(inDim * outDim), 0.6, 0.05),
    );
    const analog = new AnalogModel(loadSpec('pcm-aihwkit'), 3);
    const y = analog.linear('layer.0.ffnIn', input('x', [n, inDim]), param('w', wv));
    const gpu = await gpuGraph(y);
    const cpu = await compile({ y }, { cache: false });
    // random inputs (each vector at its DAC's full scale somewhere) never saturate; a vector of
    // halves with one 1 (~19) saturates in the first round only; all ones (~38) in the second too
    const quiet = rng.fillNormal(new Float32Array(n * inDim));
    const once = quiet.slice();
    once.fill(0.5, 0, inDim);
    once[0] = 1;
    const twice = quiet.slice();
    twice.fill(1, 0, inDim);
    const cases = [quiet, once, twice].map((d) => ({ x: hostArray('float32', [n, inDim], d) }));
    const ran: number[] = [];
    for (const f of cases) {
      // noise keyed by samples 40…: the gated rounds' kernels read the run's first sample too
      const r = await counted(gpu, f, 40);
      ran.push(r.ran);
      const want = (await cpu.run(f, 40)).y!.data as Float32Array;
      const got = r.y.data as Float32Array;
      let flips = 0;
      for (let i = 0; i < want.length; i++)
        if (Math.abs(got[i]! - want[i]!) > 1e-4 * Math.abs(want[i]!) + 1e-6) flips++;
      assert.ok(flips <= 1, `${flips} of ${want.length} outputs differ from the CPU's`);
    }
    assert.ok(ran[0]! < ran[1]! && ran[1]! < ran[2]!, `dispatches that ran: ${ran}`);
  });
});
