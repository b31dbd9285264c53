/**
 * Drift compensation read through the periphery (aihwkit's GlobalDriftCompensation): with a
 * perfect periphery it is the noise-free ratio; with output noise and an ADC its mean and spread
 * over readouts are what the readout's noise predicts; the spec's kinds switch it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { programWeights } from '../../src/analog/program.js';
import { runProgramJob } from '../../src/analog/program-workers.js';
import { Crossbar } from '../../src/analog/spec.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { erf, Rng } from '../../src/util/math.js';

const ROWS = 256;
const COLS = 4;
/** Small weights, as a trained layer's are next to aihwkit's output noise σ 0.06 (weights unscaled, ω = 0). */
const WD = Float32Array.from({ length: ROWS * COLS }, (_, k) => 0.08 * Math.sin(1.7 * k + 0.3) ** 3);
const W = hostArray('float32', [ROWS, COLS], WD);
const HOUR = 3600;

/** One tile of PCM cells without programming noise (the reference is the targets), drifting without read noise. */
const xbarOf = (fields: Record<string, unknown>) =>
  Crossbar.parse({
    tile: { rows: ROWS, cols: COLS },
    mapping: { gMinUS: 0, gMaxUS: 25, scale: 'none' },
    drift: { kind: 'pcm', readNoise: false },
    driftCompensation: 'global',
    ...fields,
  });
/** aihwkit's default periphery (pcm-aihwkit): output noise σ 0.06, 9-bit ADC over ±12, 7-bit PWM DAC. */
const PERIPHERY = {
  outputNoise: { kind: 'gaussian', sigma: 0.06 },
  dac: { kind: 'uniform', bits: 7, mode: 'pwm' },
  adc: { kind: 'uniform', bits: 9, range: { kind: 'fixed', max: 12 } },
};
const STEP = 12 / 255;

const meanAbs = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + Math.abs(v), 0) / a.length;
const phi = (z: number) => 0.5 * (1 + erf(z / Math.SQRT2));

/** Mean and variance of |Q(w + σξ)|, Q rounding to multiples of `step` (the ADC well inside its range). */
function absMoments(w: number, sigma: number, step: number): { mean: number; variance: number } {
  let m1 = 0;
  let m2 = 0;
  for (let k = Math.floor((w - 9 * sigma) / step); k <= Math.ceil((w + 9 * sigma) / step); k++) {
    const p = phi(((k + 0.5) * step - w) / sigma) - phi(((k - 0.5) * step - w) / sigma);
    m1 += Math.abs(k * step) * p;
    m2 += (k * step) ** 2 * p;
  }
  return { mean: m1, variance: m2 - m1 * m1 };
}

describe('drift compensation through the periphery', () => {
  it('with a perfect periphery, the gain is aihwkit’s mean|eye·W₀| / mean|eye·W_t|, the noise-free ratio', () => {
    const p = programWeights(W, xbarOf({}), HOUR, new Rng(1));
    const want = meanAbs(WD) / meanAbs(p.weights);
    assert.ok(want > 1.1, `drift shrinks the weights: ${want}`);
    for (const s of p.scale) assert.ok(Math.abs(s / want - 1) < 1e-6, `gain ${s}, want ${want}`);
    const ideal = programWeights(W, xbarOf({ driftCompensation: 'global-ideal' }), HOUR, new Rng(1));
    assert.deepEqual(ideal.weights, p.weights);
    for (const s of ideal.scale) assert.ok(Math.abs(s / want - 1) < 1e-6);
  });

  it('with output noise and an ADC, the gain’s mean and spread over readouts are what their noise predicts', () => {
    const xbar = xbarOf(PERIPHERY);
    const n = 300;
    // the same cells each time (stream 1); only the readouts' stream changes
    const gains = Array.from(
      { length: n },
      (_, i) => programWeights(W, xbar, HOUR, new Rng(1), undefined, undefined, new Rng(100 + i)).scale[0]!,
    );
    const cells = programWeights(W, xbar, HOUR, new Rng(1)).weights;
    // each readout is the mean of ROWS·COLS independent |Q(w + σξ)|: its mean μ and variance v/m
    const readout = (w: ArrayLike<number>) => {
      let mu = 0;
      let v = 0;
      for (let k = 0; k < w.length; k++) {
        const m = absMoments(w[k]!, 0.06, STEP);
        mu += m.mean;
        v += m.variance;
      }
      return { mu: mu / w.length, rel2: v / w.length / w.length / (mu / w.length) ** 2 };
    };
    const ref = readout(WD);
    const cur = readout(cells);
    // R₀/R_t to second order (delta method): mean μ₀/μ_t·(1 + rel²_t), sd μ₀/μ_t·sqrt(rel²₀ + rel²_t)
    const ratio = ref.mu / cur.mu;
    const wantMean = ratio * (1 + cur.rel2);
    const wantSd = ratio * Math.sqrt(ref.rel2 + cur.rel2);
    const mean = gains.reduce((s, g) => s + g, 0) / n;
    const sd = Math.sqrt(gains.reduce((s, g) => s + (g - mean) ** 2, 0) / (n - 1));
    // 4 standard errors: of the mean sd/√n, of the sd sd/√(2(n − 1))
    if (process.env.XBAR_VERBOSE)
      console.log({ mean, wantMean, sd, wantSd, ratio, noiseFree: meanAbs(WD) / meanAbs(cells) });
    assert.ok(Math.abs(mean - wantMean) < (4 * wantSd) / Math.sqrt(n), `mean ${mean}, predicted ${wantMean}`);
    assert.ok(Math.abs(sd - wantSd) < (4 * wantSd) / Math.sqrt(2 * (n - 1)), `sd ${sd}, predicted ${wantSd}`);
    // and it is not the noise-free ratio: the noise floor of |output| pulls the gain towards 1
    const noiseFree = meanAbs(WD) / meanAbs(cells);
    assert.ok(noiseFree - mean > (20 * wantSd) / Math.sqrt(n), `noise-free ${noiseFree}, measured ${mean}`);
  });

  it('the kinds switch it: none, global-ideal, global and column; instances are reproducible', () => {
    const job = (driftCompensation: string) =>
      runProgramJob({ weights: W, xbar: xbarOf({ ...PERIPHERY, driftCompensation }), timeS: HOUR, seed: 5 });
    const none = job('none');
    const ideal = job('global-ideal');
    const global = job('global');
    const column = job('column');
    const columnIdeal = job('column-ideal');
    assert.ok(none.scale.every((s) => s === 1));
    // the readouts draw from their own stream: the cells are the same whatever reads them
    for (const p of [ideal, global, column, columnIdeal]) assert.deepEqual(p.weights, none.weights);
    assert.ok(Math.abs(ideal.scale[0]! / (meanAbs(WD) / meanAbs(none.weights)) - 1) < 1e-6);
    assert.ok(global.scale.every((s) => s === global.scale[0]));
    assert.notEqual(global.scale[0], ideal.scale[0]);
    assert.ok(new Set(column.scale).size === COLS && new Set(columnIdeal.scale).size === COLS);
    assert.notDeepEqual(column.scale, columnIdeal.scale);
    assert.deepEqual(job('global').scale, global.scale);
  });

  it('bound management rereads a saturated readout with its input halved', () => {
    // an ADC range of 0.1 saturates on a weight of 0.15: the second round reads 0.075, × 2
    const w = hostArray('float32', [2, 1], Float32Array.of(0.15, 0.05));
    const adc = (boundManagement: string) => ({
      adc: {
        kind: 'uniform',
        bits: 9,
        range: { kind: 'fixed', max: 0.1 },
        boundManagement: { kind: boundManagement },
      },
      mapping: { gMinUS: 0, gMaxUS: 25, scale: 'none' },
      tile: { rows: 2, cols: 1 },
    });
    const gain = (bm: string) => programWeights(w, xbarOf(adc(bm)), HOUR, new Rng(3)).scale[0]!;
    const exact = programWeights(w, xbarOf({ tile: { rows: 2, cols: 1 } }), HOUR, new Rng(3)).scale[0]!;
    assert.ok(Math.abs(gain('iterative') / exact - 1) < 0.01, `${gain('iterative')} vs ${exact}`);
    assert.ok(Math.abs(gain('none') / exact - 1) > 0.05, `${gain('none')} vs ${exact}`);
  });
});
