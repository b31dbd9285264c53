/** Variation-aware training: noise of the configured size in the graph, gradients that reach every weight, clear errors. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../src/analog/presets.js';
import type { ResolvedSpec } from '../../src/analog/resolve.js';
import { grad } from '../../src/graph/autodiff.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { crossEntropy } from '../../src/graph/nn.js';
import { input, param } from '../../src/graph/tensor.js';
import { digital } from '../../src/models/encoder.js';
import { compile } from '../../src/runtime/session.js';
import { NoiseAwareTraining, noisyWeight, weightNoise } from '../../src/train/noise-aware.js';
import { Rng } from '../../src/util/math.js';
import { vitMnist } from '../helpers/models.js';

/** Crossbar products with the spec's noise drawn in the graph (no learned ranges). */
const noiseAwareMatmuls = (spec: ResolvedSpec, seed: number) =>
  new NoiseAwareTraining(spec, seed).graph().matmuls;

describe('noise-aware training', () => {
  it('draws w·(1 + σε) with the configured σ, fresh every run', async () => {
    const n = 100_000;
    const w = param('w', hostArray('float32', [n], new Float32Array(n).fill(2)));
    const g = await compile({ y: noisyWeight(w, { relative: 0.1, additive: 0 }, 5) });
    const a = (await g.run({}))['y']!.data as Float32Array;
    const b = (await g.run({}))['y']!.data as Float32Array;
    const mean = a.reduce((s, v) => s + v, 0) / n;
    const sd = Math.sqrt(a.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
    // true mean 2, sd 0.2: the mean's standard error is 0.2/√n, the sd's about 0.2/√(2n)
    assert.ok(Math.abs(mean - 2) < 5 * (0.2 / Math.sqrt(n)), `mean ${mean}`);
    assert.ok(Math.abs(sd - 0.2) < 5 * (0.2 / Math.sqrt(2 * n)), `sd ${sd}`);
    assert.notEqual(a[0], b[0]);
  });

  it('adds relative programming and read noise in quadrature; rejects kinds it cannot train with', () => {
    const x = loadSpec('fefet-trex').crossbar('layer.0.query');
    assert.ok(Math.abs(weightNoise(x, 'fefet-trex').relative - Math.hypot(0.2, 0.1)) < 1e-12);
    assert.throws(
      () => weightNoise(loadSpec('pcm-aihwkit').crossbar('layer.0.query'), 'pcm-aihwkit'),
      /program.kind: 'pcm' is not supported by noise-aware training/,
    );
  });

  it('adds output noise σ per tile in normalised units: σ·s·range per tile in weight and input units (HWA recipe)', async () => {
    const spec = loadSpec('pcm-lammie', [
      'program.kind=none',
      'drift.kind=none',
      'outputNoise.sigma=0.1',
      'tile.rows=4',
      'dac.kind=ideal',
      'adc.kind=ideal',
    ]);
    const n = 20_000;
    // W [8, 1] = 0.5 in 2 input tiles of 4 rows (s = 0.5 each); x = [1, −2, 0, 0 | 0, 0, 3, 0]:
    // ranges 2 and 3, so the output's std is 0.1·0.5·√(2² + 3²) and its mean 0.5·(1 − 2 + 3)
    const w = param('w', hostArray('float32', [8, 1], new Float32Array(8).fill(0.5)));
    const xs = new Float32Array(n * 8);
    for (let i = 0; i < n; i++) xs.set([1, -2, 0, 0, 0, 0, 3, 0], i * 8);
    const x = input('x', [n, 8]);
    const g = await compile({ y: noiseAwareMatmuls(spec, 9).linear('layer.0.query', x, w) });
    const y = (await g.run({ x: hostArray('float32', [n, 8], xs) }))['y']!.data as Float32Array;
    const mean = y.reduce((s, v) => s + v, 0) / n;
    const sd = Math.sqrt(y.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1));
    const want = 0.1 * 0.5 * Math.sqrt(13);
    assert.ok(Math.abs(mean - 1) < 5 * (want / Math.sqrt(n)), `mean ${mean}`);
    assert.ok(Math.abs(sd - want) < 5 * (want / Math.sqrt(2 * n)), `sd ${sd} vs ${want}`);
  });

  it('draws additive weight noise σ in units of the tile scale (unit weights)', async () => {
    const spec = loadSpec('pcm-lammie', [
      'program.kind=additive',
      'program.sigma=0.06',
      'drift.kind=none',
      'outputNoise.kind=none',
      'dac.kind=ideal',
      'adc.kind=ideal',
    ]);
    // one input at full scale reads one weight: 0.25 + 0.06·max|W|·ε with max|W| = 2, a fresh
    // draw at every run (the step), so the spread over runs is 0.12
    const w = param('w', hostArray('float32', [2, 1], Float32Array.from([0.25, 2])));
    const x = input('x', [1, 2]);
    const g = await compile({ y: noiseAwareMatmuls(spec, 4).linear('layer.0.query', x, w) });
    const runs = 1000;
    const draws: number[] = [];
    for (let k = 0; k < runs; k++)
      draws.push(
        (
          (await g.run({ x: hostArray('float32', [1, 2], Float32Array.from([1, 0])) }))['y']!
            .data as Float32Array
        )[0]!,
      );
    const m = draws.reduce((s, v) => s + v, 0) / runs;
    const d = Math.sqrt(draws.reduce((s, v) => s + (v - m) ** 2, 0) / (runs - 1));
    assert.ok(Math.abs(m - 0.25) < 5 * (0.12 / Math.sqrt(runs)), `mean over runs ${m}`);
    assert.ok(Math.abs(d - 0.12) < 5 * (0.12 / Math.sqrt(2 * runs)), `std over runs ${d} vs 0.12`);
  });

  it('equals the exact model when the spec has no noise, and its gradients then equal the exact ones', async () => {
    const { model } = vitMnist(4);
    const quiet = loadSpec('fefet-trex', [
      'program.kind=none',
      'readNoise.kind=none',
      'attention.kind=digital',
      'dac.kind=ideal',
      'adc.kind=ideal',
    ]);
    const labels = input('labels', [2], 'int32');
    const outs = (m: typeof digital) => {
      const mg = model.graph({ batch: 2 }, m);
      const loss = crossEntropy(mg.logits, labels);
      return { loss, gs: grad(loss, model.params()) };
    };
    const feed = {
      pixel_values: hostArray(
        'float32',
        [2, 1, 28, 28],
        new Rng(1).fillNormal(new Float32Array(2 * 784), 0, 1),
      ),
      labels: hostArray('int32', [2], Int32Array.from([3, 7])),
    };
    const run = async (m: typeof digital) => {
      const o = outs(m);
      const g = await compile({ loss: o.loss, ...Object.fromEntries(o.gs.map((t, k) => [`g${k}`, t])) });
      return g.run(feed);
    };
    const exact = await run(digital);
    const vat = await run(noiseAwareMatmuls(quiet, 1));
    for (const k of Object.keys(exact)) {
      const a = exact[k]!.data as Float32Array;
      const b = vat[k]!.data as Float32Array;
      a.forEach((v, i) => {
        assert.ok(Math.abs(v - b[i]!) <= 1e-5 * (1 + Math.abs(v)), `${k}[${i}] ${v} vs ${b[i]}`);
      });
    }
  });

  it('passes gradients to the key and value weights through the K/V crossbars (ClipFormer γ = 2)', async () => {
    const { model } = vitMnist(4);
    const spec = loadSpec('rram-clipformer', ['attention.device.program.gamma=2']);
    const mg = model.graph({ batch: 2 }, noiseAwareMatmuls(spec, 3));
    const labels = input('labels', [2], 'int32');
    const loss = crossEntropy(mg.logits, labels);
    const params = model.params();
    const names = params.map((p) => (p.attrs as { name: string }).name);
    const pick = names.flatMap((n, i) => (/attention\.(key|value)\.weight$/.test(n) ? [i] : []));
    assert.equal(pick.length, 2, names.join(', '));
    const gs = grad(
      loss,
      pick.map((i) => params[i]!),
    );
    const g = await compile({ loss, k: gs[0]!, v: gs[1]! });
    const out = await g.run({
      pixel_values: hostArray(
        'float32',
        [2, 1, 28, 28],
        new Rng(2).fillNormal(new Float32Array(2 * 784), 0, 1),
      ),
      labels: hostArray('int32', [2], Int32Array.from([1, 2])),
    });
    for (const k of ['k', 'v']) {
      const d = out[k]!.data as Float32Array;
      assert.ok(d.every(Number.isFinite), `${k}: non-finite gradient`);
      assert.ok(
        d.some((v) => v !== 0),
        `${k}: all-zero gradient`,
      );
    }
    assert.ok(Number.isFinite((out['loss']!.data as Float32Array)[0]!));
  });
});
