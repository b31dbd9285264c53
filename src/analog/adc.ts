/**
 * The ADC of the analog MVM and its bound management: values before the ADC in ADC steps →
 * integer codes, and the tests iterative bound management reruns saturated vectors by
 * (aihwkit's periphery). Shapes: […, T, 1] holds one value per column tile of widths `widths`.
 */
import { concat, type Tensor, where } from '../graph/tensor.js';
import { peakMagnitude } from './dac.js';
import { type Crossbar, signedLevels } from './spec.js';

/**
 * The ADC's step in normalised units (1 for an ideal ADC). With a calibrated range, the step of
 * the full-scale range: the values before the ADC are in those steps, and each column's
 * `adcGains` (rows / its range) turns them into its own steps just before the conversion.
 */
export function adcStep(xbar: Crossbar, rows: number): number {
  if (xbar.adc.kind !== 'uniform') return 1;
  return adcBound(xbar, rows) / signedLevels(xbar.adc.bits);
}

/** The ADC's saturation ±bound in normalised units: a fixed one, else the full scale (±rows). */
export function adcBound(xbar: Crossbar, rows: number): number {
  const r = xbar.adc.kind === 'uniform' ? xbar.adc.range : null;
  return r?.kind === 'fixed' ? r.max : rows;
}

/** Whether the ADC's range is set per column from calibration data (`AnalogModel.adcRanges`). */
export const calibratedAdc = (xbar: Crossbar): boolean =>
  xbar.adc.kind === 'uniform' && xbar.adc.range.kind === 'calibrated';

/**
 * The ADC's integer codes of values in ADC steps (identity for an ideal ADC). `inRange`: no
 * conversion saturates (bound management tested it), so the clip is left out.
 */
export function adcCodes(y: Tensor, xbar: Crossbar, inRange: boolean): Tensor {
  return xbar.adc.kind === 'uniform' ? y.quantize(signedLevels(xbar.adc.bits), inRange) : y;
}

/**
 * Rounds of bound management (1: none): divisors 1, 2, 4, … up to the first that exceeds
 * maxFactor or levels/minInputLevels of a quantised DAC (aihwkit's stopping rule).
 */
export function boundManagementRounds(xbar: Crossbar): number {
  if (xbar.adc.kind !== 'uniform' || xbar.adc.boundManagement.kind === 'none') return 1;
  const bm = xbar.adc.boundManagement;
  const dacLevels = xbar.dac.kind === 'uniform' ? signedLevels(xbar.dac.bits) : Infinity;
  const limit = Math.min(bm.maxFactor, dacLevels / bm.minInputLevels);
  let rounds = 1;
  for (let divisor = 1; !(divisor > limit); divisor *= 2) rounds++;
  return rounds;
}

/**
 * |y| (in ADC steps) above which a conversion saturates: its code, rounded half to even, lies
 * beyond ±levels, or reaches ±levels when `top` (see `topCodeSaturates`). The half-way value
 * itself saturates when it rounds up (to an even code): the threshold is then the float32 below.
 */
export function saturationThreshold(levels: number, top = false): number {
  const first = top ? levels : levels + 1; // the first saturated code
  const edge = first - 0.5;
  if (first % 2 !== 0) return edge;
  const f = new Float32Array([edge]);
  new Uint32Array(f.buffer)[0]! -= 1;
  return f[0]!;
}

/**
 * Whether aihwkit's C++ periphery sees its top ADC code as beyond its bound: it tests the
 * float32 value code·step > bound, with its step 2·bound·fl(1/(2·levels)) in float32. For 9 bits
 * over ±12 (its default) the top code reads 12.000001, so reaching it counts as saturating.
 */
export function topCodeSaturates(levels: number, bound: number): boolean {
  const f = Math.fround;
  return f(levels * f(f(1 / (2 * levels)) * f(2 * bound))) > f(bound);
}

/** max over each column tile of a [..., C]: → [..., T, 1]. */
function tilePeak(a: Tensor, widths: readonly number[]): Tensor {
  const lead = a.shape.slice(0, -1);
  const w = widths[0]!;
  if (widths.every((v) => v === w)) return a.reshape([...lead, widths.length, w]).max(-1, true);
  let at = 0;
  const parts = widths.map((v) => {
    const m = a.slice(-1, at, at + v).max(-1, true);
    at += v;
    return m;
  });
  return concat(parts, -1).reshape([...lead, widths.length, 1]);
}

/** Per column tile, a where `mask` [..., T, 1] holds, else b (both [..., C]). */
export function tileSelect(mask: Tensor, a: Tensor, b: Tensor, widths: readonly number[]): Tensor {
  const lead = a.shape.slice(0, -1);
  const w = widths[0]!;
  if (widths.every((v) => v === w)) {
    const split = [...lead, widths.length, w];
    return where(mask, a.reshape(split), b.reshape(split)).reshape(a.shape);
  }
  let at = 0;
  const parts = widths.map((v, t) => {
    const m = mask.slice(-2, t, t + 1).reshape([...mask.shape.slice(0, -2), 1]);
    const part = where(m, a.slice(-1, at, at + v), b.slice(-1, at, at + v));
    at += v;
    return part;
  });
  return concat(parts, -1);
}

/** The largest |value| before the ADC per column tile, over planes and slices: [(…), R, N, T, 1]. */
export function tilePeaks(pre: readonly Tensor[], widths: readonly number[]): Tensor {
  let peak: Tensor | undefined;
  for (const p of pre) {
    const m = tilePeak(p.abs(), widths); // [J, …, R, N, T, 1]
    const planePeak = m.shape[0] === 1 ? m.reshape(m.shape.slice(1)) : m.max(0);
    peak = peak ? peak.maximum(planePeak) : planePeak;
  }
  return peak!;
}

/**
 * Whether any value before the ADC exceeds `threshold` in magnitude: two reductions that only
 * read, per row first (ONNX Runtime reduces a whole tensor to one value on one thread, rows on
 * all of them), then over the small result.
 */
export function anyAbove(pre: readonly Tensor[], threshold: number): Tensor {
  let top: Tensor | undefined;
  for (const p of pre) {
    const m = peakMagnitude(p).max();
    top = top ? top.maximum(m) : m;
  }
  return top!.greater(threshold);
}
