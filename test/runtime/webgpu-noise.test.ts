/**
 * The `noise` op on the WebGPU runtime, drawn on the GPU: in the fused chain that reads it (a
 * thread per Philox block, or per element), or into a buffer once per run for other readers.
 * Its values are util/philox.ts fillNoise's for every first sample; the `pcm-aihwkit` preset on
 * the shipped ViT gives the CPU's logits.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { Predictor } from '../../src/eval/predict.js';
import { f32, toNumbers } from '../../src/graph/ndarray.js';
import { evaluateRef } from '../../src/graph/reference.js';
import { constant, input, noise, type Tensor } from '../../src/graph/tensor.js';
import { loadModel } from '../../src/models/index.js';
import { compile } from '../../src/runtime/session.js';
import { type Dispatch, planGraph } from '../../src/runtime/webgpu/plan.js';
import { Rng } from '../../src/util/math.js';
import { fillNoise, noiseLayout } from '../../src/util/philox.js';
import { maxRelErr } from '../helpers/check.js';
import { ROOT } from '../helpers/models.js';
import { webgpuSkip } from '../helpers/webgpu.js';

interface NoiseSpec {
  shape: number[];
  seed: number;
  std: number;
  batchAxis: number;
  batch: number;
}

const FIRST_SAMPLES = [0, 5, 1234];

/**
 * Builds `build(x, z)` with z the noise leaf of `n` (on the GPU) and with z an input fed
 * fillNoise's values (on the float64 reference), runs both for several first samples, and
 * returns the GPU's plan. The Gaussians are within a few float32 ulps of the CPU's
 * (webgpu-analog.test.ts): 1e-5 of values of order 1 holds them and the float32 arithmetic of
 * short chains, where a wrong counter or lane is off by the noise itself.
 */
async function agrees(
  n: NoiseSpec,
  xShape: number[],
  build: (x: Tensor, z: Tensor) => Record<string, Tensor>,
): Promise<Dispatch[]> {
  const x = input('x', xShape);
  const onGpu = build(x, noise(n.shape, n));
  const onRef = build(x, input('z', n.shape));
  const names = Object.keys(onRef);
  const feeds = { x: f32(xShape, Array.from(new Rng(3).fillNormal(new Float32Array(size(xShape))))) };
  const g = await compile(onGpu, { provider: 'webgpu', cache: false });
  try {
    for (const first of FIRST_SAMPLES) {
      const z = new Float32Array(size(n.shape));
      fillNoise(z, noiseLayout(n.shape, n.batchAxis, n.batch), n.seed, n.std, first);
      const want = evaluateRef(
        names.map((k) => onRef[k]!),
        { ...feeds, z: f32(n.shape, Array.from(z)) },
      );
      const got = await g.run(feeds, first);
      names.forEach((k, j) => {
        const err = maxRelErr(toNumbers(got[k]!), want[j]!.data);
        assert.ok(err <= 1e-5, `${k}, first sample ${first}: max error ${err.toExponential(2)}`);
      });
    }
  } finally {
    await g.release();
  }
  return planGraph(Object.values(onGpu), 7).steps.filter((s): s is Dispatch => s.kind === 'dispatch');
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const drawsNoise = (s: Dispatch) => s.spec.code.includes('fn noise0(');

describe('noise drawn on the GPU', { skip: webgpuSkip }, () => {
  it('in the fused chain that reads it, a thread per Philox block: fillNoise’s values', async () => {
    // samples along axis 1; the chain reads the noise through a view of another shape
    const n = { shape: [2, 6, 8], seed: 5, std: 0.3, batchAxis: 1, batch: 3 };
    const steps = await agrees(n, [2, 6, 8], (x, z) => ({
      y: x.mul(2).add(z.reshape([12, 8]).reshape([2, 6, 8])),
    }));
    assert.equal(steps.length, 1, 'one kernel');
    assert.ok(steps[0]!.spec.run && steps[0]!.spec.code.includes('noise0Block(e)'), 'a thread per block');
    assert.equal(steps[0]!.inputs.length, 1, 'only x is bound');
  });

  it('in the fused chain that reads it, a thread per element: partial blocks, broadcast reads', async () => {
    // columns not a multiple of 4 (a partial block per row); samples along axis 0; the noise
    // broadcast over the chain's leading axis; a scalar std
    const n = { shape: [4, 5], seed: 0xfffffff0, std: 1, batchAxis: 0, batch: 2 };
    const steps = await agrees(n, [3, 4, 5], (x, z) => ({ y: x.add(z).mul(z) }));
    assert.equal(steps.length, 1, 'one kernel');
    assert.ok(drawsNoise(steps[0]!) && !steps[0]!.spec.code.includes('Block(e)'), 'a thread per element');
  });

  it('under a reduction or a transpose: drawn by block in the chain’s kernel, which they read', async () => {
    const n = { shape: [3, 4, 8], seed: 9, std: 2, batchAxis: 1, batch: 4 };
    for (const [op, sink] of [
      ['sum', (y: Tensor) => y.sum([1, 2])],
      ['transpose', (y: Tensor) => y.transpose([2, 0, 1])],
    ] as const) {
      const steps = await agrees(n, [3, 4, 8], (x, z) => ({ y: sink(z.add(1).mul(x)) }));
      assert.equal(steps.length, 2, `${op}: two kernels`);
      const [chain, last] = steps as [Dispatch, Dispatch];
      assert.ok(chain.spec.code.includes('noise0Block(e)'), `${op}: the chain draws by block`);
      assert.ok(
        last.output.op === op && !drawsNoise(last) && last.inputs.includes(chain.output),
        `${op} reads it`,
      );
    }
  });

  it('read by several kernels, a matmul, or as an output: drawn once per run into a buffer', async () => {
    const n = { shape: [2, 4, 8], seed: 77, std: 0.5, batchAxis: 1, batch: 2 };
    const w = constant(
      f32(
        [8, 3],
        Array.from({ length: 24 }, (_, i) => ((i * 7) % 5) - 2),
      ),
    );
    const steps = await agrees(n, [2, 4, 8], (x, z) => ({
      a: z.matmul(w),
      b: z.mul(x),
      c: z.sum(2),
      z,
    }));
    const filled = steps.filter((s) => s.output.op === 'noise');
    assert.equal(filled.length, 1, 'one noise kernel');
    assert.ok(
      steps.every((s) => !drawsNoise(s)),
      'no other kernel draws',
    );
  });

  it('runs submitted before the one before is read back: each its own feeds’ and first sample’s values', async () => {
    const n = { shape: [2, 4, 8], seed: 9, std: 0.5, batchAxis: 1, batch: 2 };
    const x = input('x', [2, 4, 8]);
    const z = noise(n.shape, n);
    const g = await compile(
      { y: x.mul(2).add(z), m: z.matmul(x.transpose([0, 2, 1])) },
      { provider: 'webgpu', cache: false },
    );
    try {
      const feeds = [0, 1, 2, 3].map((k) => ({
        x: f32([2, 4, 8], Array.from(new Rng(k).fillNormal(new Float32Array(64)))),
      }));
      const firsts = [0, 3, 17, 40];
      const alone = [];
      for (const [k, f] of feeds.entries()) alone.push(await g.run(f, firsts[k]));
      const together = await Promise.all(feeds.map((f, k) => g.run(f, firsts[k])));
      for (const [k, out] of together.entries())
        for (const name of ['y', 'm'])
          assert.deepEqual(toNumbers(out[name]!), toNumbers(alone[k]![name]!), `run ${k}, ${name}`);
      assert.notDeepEqual(toNumbers(together[0]!['y']!), toNumbers(together[1]!['y']!), 'runs differ');
    } finally {
      await g.release();
    }
  });
});

describe('an analog preset with noise on the GPU', { skip: webgpuSkip }, () => {
  it('pcm-aihwkit on models/vit-fmnist: the CPU’s logits', async () => {
    const dir = join(ROOT, 'models', 'vit-fmnist');
    const model = loadModel(dir);
    const data = openData(parseDataSpec(`fashion-mnist:${ROOT}data/fashion-mnist-demo`), model, {
      modelDir: dir,
    });
    const n = 4;
    const inputs = data.inputs(0, n);
    const analog = new AnalogModel(loadSpec('pcm-aihwkit'), 1);
    await analog.prepare(model);
    const matmuls = analog.matmuls();
    const first = 7;
    const want = toNumbers(await new Predictor(model, { matmuls }).logits(inputs, first));
    const gpu = new Predictor(model, { matmuls, provider: 'webgpu', fresh: true });
    const got = toNumbers(await gpu.logits(inputs, first));
    await gpu.release();
    // a sample's logits diverge where one of its ADC codes lands on the other side of a rounding
    // boundary (float32 sums in another order): rare per conversion, but a sample holds
    // thousands of them; with noise drawn for the wrong sample, every sample diverges
    const labels = want.length / n;
    const errors = Array.from({ length: n }, (_, s) => {
      const w = want.slice(s * labels, (s + 1) * labels);
      const g = got.slice(s * labels, (s + 1) * labels);
      return Math.max(...g.map((v, j) => Math.abs(v - w[j]!))) / Math.max(...w.map(Math.abs));
    });
    const diverged = errors.filter((e) => e > 1e-4).length;
    console.log(
      `pcm-aihwkit: ${diverged} of ${n} samples diverge (errors ${errors.map((e) => e.toExponential(1)).join(', ')})`,
    );
    assert.ok(diverged <= n / 2, `at most half the samples diverge: ${diverged} of ${n}`);
  });
});
