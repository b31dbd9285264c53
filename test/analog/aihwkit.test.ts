/**
 * pcm-aihwkit against IBM aihwkit 1.0.0 (test/fixtures/aihwkit, made by
 * scripts/reference/aihwkit_fixtures.py): deterministic forward passes to float precision,
 * PCM programming and drift statistics within sampling error.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec } from '../../src/analog/presets.js';
import { programWeights } from '../../src/analog/program.js';
import { runProgramJob } from '../../src/analog/program-workers.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { input, param } from '../../src/graph/tensor.js';
import { transpose2d } from '../../src/models/params.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';

const REF = JSON.parse(
  readFileSync(
    fileURLToPath(new URL('../../../test/fixtures/aihwkit/reference.json', import.meta.url)),
    'utf8',
  ),
);
const flat = (x: unknown): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x as number]);
const Z = 5;

/** W [out, in] (torch) and X [n, in] of a fixture section as host arrays in xbar's layout. */
function operands(sec: { W: number[][]; X: number[][] }) {
  const [out, inp] = [sec.W.length, sec.W[0]!.length];
  const w = transpose2d(hostArray('float32', [out, inp], Float32Array.from(flat(sec.W))));
  const x = hostArray('float32', [sec.X.length, inp], Float32Array.from(flat(sec.X)));
  return { w, x, out, inp };
}

async function forward(sets: string[], sec: { W: number[][]; X: number[][] }): Promise<Float32Array> {
  const { w, x, inp } = operands(sec);
  const spec = loadSpec('ideal', ['tile={rows: 512, cols: 512, split: even}', ...sets]);
  const y = new AnalogModel(spec, 0).linear('layer', input('x', [x.shape[0]!, inp]), param('w', w));
  const g = await compile({ y }, { cache: false });
  return (await g.run({ x }))['y']!.data as Float32Array;
}

describe('pcm-aihwkit matches aihwkit 1.0.0 forward passes (no noise)', () => {
  const det = REF.deterministic;
  const q8 = [
    'dac={kind: uniform, bits: 8, mode: pwm}',
    'adc={kind: uniform, bits: 8, range: {kind: fixed, max: 12}}',
  ];
  // aihwkit's default forward IO: 7-bit DAC, 9-bit ADC over ±12, iterative bound management
  const io = (bm: string) => [
    'dac={kind: uniform, bits: 7, mode: pwm}',
    `adc={kind: uniform, bits: 9, range: {kind: fixed, max: 12}, boundManagement: {kind: ${bm}}}`,
    'mapping.scale=tile',
  ];
  const cases: [string, string[]][] = [
    ['perfect', []],
    ['q8', [...q8, 'mapping.scale=none']],
    ['q8_mapped', [...q8, 'mapping.scale=tile']],
    ['default_io_mapped_bm', io('iterative')],
  ];
  for (const [name, sets] of cases) {
    it(`${name}: ${det.cases[name].note.slice(0, 70)}`, async () => {
      const got = await forward(sets, det);
      const want = flat(det.cases[name].Y);
      const scale = Math.max(...want.map(Math.abs));
      const err = Math.max(...want.map((v, i) => Math.abs(got[i]! - v)));
      assert.ok(err <= 2e-5 * scale, `max |Δ| ${err} (scale ${scale})`);
    });
  }
  it('default_io_mapped_bm saturates in its first pass: without bound management it differs', async () => {
    const c = det.cases.default_io_mapped_bm;
    assert.ok(c.first_pass_saturated_count_per_tile.every((n: number) => n > 0));
    const got = await forward(io('none'), det);
    const want = flat(c.Y);
    const err = Math.max(...want.map((v, i) => Math.abs(got[i]! - v)));
    assert.ok(err > 1, `max |Δ| ${err}`);
  });
});

describe('PCM statistics match aihwkit within sampling error', () => {
  const noisy = REF.noisy;
  const n = noisy.n_instances as number;
  const { w } = operands(noisy);
  // forward.is_perfect: no DAC, ADC or output noise, so the drift compensation's readouts are exact too
  const spec = loadSpec('pcm-aihwkit', [
    'tile={rows: 512, cols: 512, split: even}',
    'mapping.scale=tile',
    'outputNoise={kind: none}',
    'dac={kind: ideal}',
    'adc={kind: ideal}',
  ]);

  /** Per-weight mean and std of α·W at time t over n instances of our model. */
  function ours(timeS: number) {
    const xbar = spec.crossbar('layer');
    const m = new Float64Array(w.data.length);
    const m2 = new Float64Array(w.data.length);
    for (let i = 0; i < n; i++) {
      const p = programWeights(w, xbar, timeS, new Rng(1000 + i));
      // back to weight units: effective weight × the tile's digital scale (drift compensation included)
      p.weights.forEach((v, k) => {
        const e = v * p.scale[k % p.outDim]!;
        m[k]! += e;
        m2[k]! += e * e;
      });
    }
    const mean = m.map((v) => v / n);
    const std = m2.map((v, k) => Math.sqrt((v - n * mean[k]! ** 2) / (n - 1)));
    return { mean, std };
  }

  for (const [k, t] of (noisy.t_inference as number[]).entries()) {
    it(`effective weights at t = ${t} s: per-weight means within 5 standard errors, pooled std within 2 %`, () => {
      const per = noisy.per_t[k];
      // the fixture is [out, in]; ours [in, out]
      const refMean = transpose2d(hostArray('float32', [8, 64], Float32Array.from(flat(per.w_eff_mean))))
        .data as Float32Array;
      const refStd = transpose2d(hostArray('float32', [8, 64], Float32Array.from(flat(per.w_eff_std))))
        .data as Float32Array;
      const o = ours(t);
      let bad = 0;
      let ratio = 0;
      for (let i = 0; i < refMean.length; i++) {
        const se = Math.sqrt((refStd[i]! ** 2 + o.std[i]! ** 2) / n);
        if (Math.abs(o.mean[i]! - refMean[i]!) > Z * se) bad++;
        ratio += o.std[i]! / refStd[i]!;
      }
      ratio /= refMean.length;
      if (process.env.XBAR_VERBOSE)
        console.log(`t=${t}: std ratio ${ratio.toFixed(4)}, ${bad} means beyond 5 SE`);
      assert.equal(bad, 0, `${bad} of ${refMean.length} weights have means beyond 5 standard errors`);
      // each ratio of two std estimates has sd ≈ 1/√n = 0.045; over 512 weights the mean ratio's
      // sd is ≈ 0.002, so 5 SE is 0.01; doubled because the weights of a tile share α
      assert.ok(Math.abs(ratio - 1) < 0.02, `mean std ratio ours/aihwkit ${ratio.toFixed(4)}`);
    });
  }
});

describe('global drift compensation read through the default forward matches aihwkit', () => {
  const sec = REF.drift_readout;
  // scripts/reference/aihwkit_fixtures.py makes this section; a reference.json made before it has none
  const skip = sec
    ? false
    : 'test/fixtures/aihwkit/reference.json has no drift_readout section: regenerate it';
  const n = (sec?.n_instances as number) ?? 0;
  for (const [forward, sets] of [
    ['default', []],
    ['perfect', ['outputNoise={kind: none}', 'dac={kind: ideal}', 'adc={kind: ideal}']],
  ] as const) {
    for (const [k, t] of ((sec?.t_inference as number[]) ?? [0]).entries()) {
      it(`${forward} forward, t = ${t} s: the gain's mean within 5 standard errors, its std within 5`, {
        skip,
      }, () => {
        const W = sec.W as number[][];
        const [out, inp] = [W.length, W[0]!.length];
        const w = transpose2d(hostArray('float32', [out, inp], Float32Array.from(flat(W))));
        const xbar = loadSpec('pcm-aihwkit', [...sets]).crossbar('layer');
        const gains = Array.from(
          { length: n },
          (_, i) => runProgramJob({ weights: w, xbar, timeS: t, seed: 3000 + i }).scale[0]!,
        );
        const mean = gains.reduce((s, g) => s + g, 0) / n;
        const sd = Math.sqrt(gains.reduce((s, g) => s + (g - mean) ** 2, 0) / (n - 1));
        const ref = sec.forward[forward].per_t[k];
        const se = Math.sqrt((sd ** 2 + ref.alpha_std ** 2) / n);
        assert.ok(
          Math.abs(mean - ref.alpha_mean) < Z * se,
          `mean ${mean}, aihwkit ${ref.alpha_mean} (SE ${se})`,
        );
        // the std of a std estimate is σ/√(2(n − 1)), for each of the two
        const seSd = Math.sqrt((sd ** 2 + ref.alpha_std ** 2) / (2 * (n - 1)));
        assert.ok(
          Math.abs(sd - ref.alpha_std) < Z * seSd,
          `std ${sd}, aihwkit ${ref.alpha_std} (SE ${seSd})`,
        );
      });
    }
  }
});
