/**
 * The analog MVM as graph ops: DAC → crossbar products per bit slice (and input bit) →
 * read and output noise → ADC → shift-add. Works in normalised units: inputs in [−1, 1] of the
 * DAC range, weights (G+ − G−)/ΔG, so a device at G_MAX driven by a full-scale input adds 1.
 * Shapes: `…` are batch dims shared by inputs and weights (none for static weights; B, H for
 * K/V written per input); R row tiles of `rows` rows, N input vectors, C outputs.
 */

import { hostArray } from '../graph/ndarray.js';
import { constant, randomNormal, scalar, type Tensor } from '../graph/tensor.js';
import type { Crossbar } from './spec.js';

/** A stable 31-bit seed from a base seed and a label (layer name and purpose). */
export function seedFor(base: number, label: string): number {
  let h = (base ^ 0x811c9dc5) >>> 0;
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0;
  return h & 0x7fffffff;
}

/** Quantisation levels each side of zero of a signed `bits`-bit converter. */
export const signedLevels = (bits: number): number => 2 ** (bits - 1) - 1;

export interface DacOut {
  /** Quantised normalised inputs, [K, …, R, N, rows]: K = 1 (PWM) or one signed plane per magnitude bit. */
  planes: Tensor;
  /** Weight of each plane in the recombination, length K. */
  planeWeights: number[];
  /** The DAC range per tile and vector, [(…), R, N, 1], in input units. */
  range: Tensor;
}

/** Thrown for range kinds that need calibration data, which plain evaluation does not have. */
export class CalibrationError extends Error {
  constructor(field: string, kind: string) {
    super(
      `${field}: range kind '${kind}' needs calibration (post-training range optimisation) or training; ` +
        "plain evaluation supports 'dynamic' and 'fixed' input ranges and 'fixed' and 'full' ADC ranges",
    );
    this.name = 'CalibrationError';
  }
}

/**
 * DAC of tiled inputs x: [(…), R, N, rows]. The range is max|x| per tile and vector (dynamic;
 * also what an ideal DAC normalises by, so ADC ranges keep their meaning), a fixed value, or
 * one value per tile from calibration or training (`tileRanges`, [R, 1, 1]); inputs beyond a
 * fixed, calibrated or learned range clip.
 */
export function dac(x: Tensor, xbar: Crossbar, tileRanges?: Tensor): DacOut {
  const d = xbar.dac;
  const kind = d.kind === 'uniform' ? d.range.kind : 'dynamic';
  const perTile = kind === 'calibrated' || kind === 'learned';
  if (perTile && !tileRanges) throw new CalibrationError('dac.range', kind);
  const fixed = d.kind === 'uniform' && d.range.kind === 'fixed' ? d.range.max : undefined;
  const range = perTile
    ? tileRanges!.expand([...x.shape.slice(0, -1), 1])
    : fixed === undefined
      ? x.abs().max(-1, true).maximum(1e-30)
      : scalar(fixed).expand([...x.shape.slice(0, -1), 1]);
  let xn = x.div(range);
  if (fixed !== undefined || perTile) xn = xn.clip(-1, 1);
  if (d.kind === 'ideal') return { planes: xn.reshape([1, ...xn.shape]), planeWeights: [1], range };
  const levels = signedLevels(d.bits);
  if (d.mode === 'pwm') {
    return {
      planes: xn
        .mul(levels)
        .round()
        .div(levels)
        .reshape([1, ...xn.shape]),
      planeWeights: [1],
      range,
    };
  }
  // bit-serial: signed planes sign(x)·bit_k(|x|·L), bit_k = ⌊v/2^k⌋ − 2⌊v/2^(k+1)⌋
  const k = d.bits - 1;
  const mag = xn.abs().mul(levels).round();
  const pow = constant(
    hostArray(
      'float32',
      [k + 1, ...xn.shape.map(() => 1)],
      Float32Array.from({ length: k + 1 }, (_, i) => 2 ** -i),
    ),
  );
  const floors = mag
    .reshape([1, ...mag.shape])
    .mul(pow)
    .floor();
  const bits = floors.slice(0, 0, k).sub(floors.slice(0, 1, k + 1).mul(2));
  const planes = bits.mul(xn.sign());
  return { planes, planeWeights: Array.from({ length: k }, (_, i) => 2 ** i / levels), range };
}

/**
 * Crossbar products of DAC planes [K, …, R, N, rows] with weights [J, …, R, rows, C] (and their
 * squares, for read noise), through noise and ADC, recombined: → [(…), R, N, C] normalised.
 */
export function crossbarProducts(
  d: DacOut,
  weights: Tensor,
  squares: Tensor | null,
  sliceWeights: readonly number[],
  xbar: Crossbar,
  rows: number,
  seed: number,
): Tensor {
  // one input plane at a time: the [J, …, R, N, C] products of a plane are the largest tensor,
  // not [K, J, …] (7× smaller for 8-bit bit-serial inputs)
  const step = adcStep(xbar, rows);
  // outputs are computed in ADC steps: 1/step and the noise scales are folded into the
  // (small) weight tensors, the step into the shift-add, saving passes over the outputs
  const w = step === 1 ? weights : weights.mul(1 / step);
  const sigma = xbar.readNoise.kind === 'relative' ? xbar.readNoise.sigma : 0;
  const sq = squares && sigma > 0 ? squares.mul((sigma / step) ** 2) : null;
  const outSigma = xbar.outputNoise.kind === 'gaussian' ? xbar.outputNoise.sigma / step : 0;
  const k = d.planeWeights.length;
  let acc: Tensor | null = null;
  for (let p = 0; p < k; p++) {
    const plane =
      k === 1
        ? d.planes.reshape(d.planes.shape.slice(1))
        : d.planes.slice(0, p, p + 1).reshape(d.planes.shape.slice(1));
    const y = sliceProducts(plane, w, sq, outSigma, xbar, seedFor(seed, `plane${p}`));
    const coef = sliceWeights.map((sw) => sw * d.planeWeights[p]! * step);
    const term = coef.length === 1 && coef[0] === 1 ? y.reshape(y.shape.slice(1)) : shiftAdd(y, coef);
    acc = acc ? acc.add(term) : term;
  }
  return acc!;
}

/** The ADC's step in normalised units (1 for an ideal ADC). */
function adcStep(xbar: Crossbar, rows: number): number {
  if (xbar.adc.kind !== 'uniform') return 1;
  const r = xbar.adc.range;
  if (r.kind === 'calibrated') throw new CalibrationError('adc.range', r.kind);
  return (r.kind === 'fixed' ? r.max : rows) / signedLevels(xbar.adc.bits);
}

/** Σ_j coef_j·y_j over the leading slice axis. y: [J, …] → […] */
function shiftAdd(y: Tensor, coef: readonly number[]): Tensor {
  if (coef.length === 1) return y.reshape(y.shape.slice(1)).mul(coef[0]!);
  const c = constant(
    hostArray('float32', [coef.length, ...y.shape.slice(1).map(() => 1)], Float32Array.from(coef)),
  );
  return y.mul(c).sum(0);
}

/**
 * One input plane [(…), R, N, rows] times every weight slice [J, …, R, rows, C] (weights in ADC
 * steps, squares pre-multiplied by (σ_R/step)²), with read and output noise and the ADC
 * → [J, …, R, N, C] in ADC steps.
 */
function sliceProducts(
  x: Tensor,
  weights: Tensor,
  squares: Tensor | null,
  outSigma: number,
  xbar: Crossbar,
  seed: number,
): Tensor {
  let y = x.matmul(weights);
  if (squares) {
    // G(1 + σξ) per device, exactly in distribution: σ·sqrt(Σ x²·G²)·ξ per output
    y = y.add(
      x
        .mul(x)
        .matmul(squares)
        .sqrt()
        .mul(randomNormal(y.shape, { seed: seedFor(seed, 'read') })),
    );
  }
  if (outSigma > 0) y = y.add(randomNormal(y.shape, { seed: seedFor(seed, 'out'), std: outSigma }));
  if (xbar.adc.kind === 'uniform') {
    const levels = signedLevels(xbar.adc.bits);
    y = y.round().clip(-levels, levels);
  }
  return y;
}

/** Whether a crossbar computes exactly what the floating-point matmul does. */
export function isPerfect(x: Crossbar): boolean {
  return (
    x.cells.kind === 'analog' &&
    x.program.kind === 'none' &&
    x.readNoise.kind === 'none' &&
    x.drift.kind === 'none' &&
    x.outputNoise.kind === 'none' &&
    x.dac.kind === 'ideal' &&
    x.adc.kind === 'ideal' &&
    x.mapping.clip.kind === 'none'
  );
}
