/**
 * The DAC of the analog MVM: tiled inputs x [(…), R, N, rows] → signed codes in [−1, 1] of the
 * DAC range, as one plane (PWM, ideal) or one plane per magnitude bit (bit-serial). Works in
 * normalised units: a full-scale input is 1.
 */
import { hostArray } from '../graph/ndarray.js';
import { constant, scalar, type Tensor } from '../graph/tensor.js';
import { InputError } from '../util/errors.js';
import { type Crossbar, signedLevels } from './spec.js';

export interface DacOut {
  /**
   * The DAC's planes, [K, …, R, N, rows]: K = 1 (PWM; integer codes) or one signed bit plane per
   * magnitude bit. `planeScale` × planes are the normalised inputs in [−1, 1].
   */
  planes: Tensor;
  /**
   * The signed codes the planes come from, [(…), R, N, rows]: integers for a quantising DAC
   * (bit-serial planes are the bits of their magnitudes), the normalised inputs for an ideal one.
   */
  codes: Tensor;
  /** Normalised units per plane unit: 1/levels for PWM codes (folded into the weights), else 1. */
  planeScale: number;
  /** Weight of each plane in the recombination, length K. */
  planeWeights: number[];
  /** The DAC range per tile and vector, [(…), R, N, 1], in input units. */
  range: Tensor;
}

/** The error for range kinds that need calibration data, which plain evaluation does not have. */
export const calibrationError = (field: string, kind: string) =>
  new InputError(
    field,
    `range kind '${kind}' needs ${kind === 'learned' ? 'training (xbar train --hwa)' : 'calibration on data (xbar eval --calibration, or an experiment)'}; ` +
      "plain evaluation supports 'dynamic' and 'fixed' input ranges, the 'full' conductance range and 'full' and 'fixed' ADC ranges",
  );

/** max|x| along the last axis, kept: the larger of max x and −min x, two reductions that only read x (|x| would be written first). */
export function peakMagnitude(x: Tensor): Tensor {
  return x.max(-1, true).maximum(x.min(-1, true).neg());
}

/**
 * DAC of tiled inputs x: [(…), R, N, rows]. The range is max|x| per tile and vector (dynamic;
 * also what an ideal DAC normalises by, so ADC ranges keep their meaning), a fixed value, or
 * one value per tile from calibration or training (`tileRanges`, [R, 1, 1]); inputs beyond a
 * fixed, calibrated or learned range clip. Quantised inputs are integer codes: levels/range is
 * one small tensor, so quantising costs one multiply and one round over the inputs.
 * `divisor`: bound management's reduced rounds see x/divisor (`known`: the range of x, already
 * computed for the first round).
 */
export function dac(x: Tensor, xbar: Crossbar, tileRanges?: Tensor, divisor = 1, known?: Tensor): DacOut {
  const d = xbar.dac;
  const kind = d.kind === 'uniform' ? d.range.kind : 'dynamic';
  const perTile = kind === 'calibrated' || kind === 'learned';
  if (perTile && !tileRanges) throw calibrationError('dac.range', kind);
  const fixed = d.kind === 'uniform' && d.range.kind === 'fixed' ? d.range.max : undefined;
  const clips = fixed !== undefined || perTile;
  const range =
    known ??
    (perTile
      ? tileRanges!.expand([...x.shape.slice(0, -1), 1])
      : fixed === undefined
        ? peakMagnitude(x).maximum(1e-30)
        : scalar(fixed).expand([...x.shape.slice(0, -1), 1]));
  const plane = (t: Tensor) => t.reshape([1, ...t.shape]);
  if (d.kind === 'ideal') {
    const xn = x.div(divisor === 1 ? range : range.mul(divisor));
    const codes = clips ? xn.clip(-1, 1) : xn;
    return { planes: plane(codes), codes, planeScale: 1, planeWeights: [1], range };
  }
  const levels = signedLevels(d.bits);
  // In reduced rounds the largest input lands on a half level (levels/2 at divisor 2), where the
  // arithmetic decides the code: these rounds quantise as aihwkit's C++ does, x·(1/(range·r))
  // divided by its float32 step 2·fl(1/(2·levels)), a hair above 1/levels, so it rounds down.
  const scaled =
    divisor === 1
      ? x.mul(scalar(levels).div(range))
      : x.mul(scalar(1).div(range.mul(divisor))).div(2 * Math.fround(1 / (2 * levels)));
  // a dynamic range holds every input: its codes lie within ±levels, so no clip is needed
  if (d.mode === 'pwm') {
    const codes = scaled.quantize(levels, !clips);
    return { planes: plane(codes), codes, planeScale: planeScale(xbar), planeWeights: [1], range };
  }
  // bit-serial: signed planes sign(x)·bit_k(|x|·L)
  const k = d.bits - 1;
  const mag = scaled.abs().quantize(levels, !clips);
  return {
    planes: digits(mag, 2, k).mul(x.sign()),
    codes: mag.mul(x.sign()),
    planeScale: 1,
    planeWeights: Array.from({ length: k }, (_, i) => 2 ** i / levels),
    range,
  };
}

/**
 * The `count` lowest base-`base` digits of whole numbers v ≥ 0: [count, …v's shape], digit j =
 * ⌊v·b^−j⌋ − b·⌊v·b^−(j+1)⌋ (each b^−j an exact float32 constant).
 */
export function digits(v: Tensor, base: number, count: number): Tensor {
  const pow = constant(
    hostArray(
      'float32',
      [count + 1, ...v.shape.map(() => 1)],
      Float32Array.from({ length: count + 1 }, (_, i) => base ** -i),
    ),
  );
  const floors = v
    .reshape([1, ...v.shape])
    .mul(pow)
    .floor();
  return floors.slice(0, 0, count).sub(floors.slice(0, 1, count + 1).mul(base));
}

/** Normalised input units per DAC plane unit: 1/levels for PWM codes, else 1. */
export function planeScale(xbar: Crossbar): number {
  const d = xbar.dac;
  return d.kind === 'uniform' && d.mode === 'pwm' ? 1 / signedLevels(d.bits) : 1;
}
