/**
 * Drift compensation: the digital gain per tile (or column) that restores the mean |output| of
 * the programmed state after drift. aihwkit's `GlobalDriftCompensation` measures it: right after
 * programming and again at the evaluation time the tile reads one-hot inputs through its own
 * periphery (DAC, read and output noise, ADC, bound management), and the gain is the ratio of
 * the two mean |outputs|, each clamped at 1e-4. The `-ideal` kinds take the noise-free ratio of
 * the cells instead, which isolates drift from readout noise.
 */
import { type Rng, roundHalfEven } from '../util/math.js';
import { adcBound, adcStep, boundManagementRounds, saturationThreshold, topCodeSaturates } from './adc.js';
import type { Span } from './program.js';
import { type Crossbar, signedLevels } from './spec.js';

/** How a crossbar compensates drift: per tile or per column, from a periphery readout or the ideal cells; null: not at all. */
export function compensationOf(x: Crossbar): { perColumn: boolean; readout: 'periphery' | 'ideal' } | null {
  const kind = x.driftCompensation;
  if (kind === 'none' || x.drift.kind === 'none') return null;
  return { perColumn: kind.startsWith('column'), readout: kind.endsWith('-ideal') ? 'ideal' : 'periphery' };
}

/** aihwkit's floor on a readout's mean |output| (in the tile's output units). */
const READOUT_FLOOR = 1e-4;

/** The gains of one column tile from the reference and current Σ|output| per column over `n` rows each. */
export function compensationGains(
  ref: Float64Array,
  cur: Float64Array,
  n: number,
  perColumn: boolean,
): Float64Array {
  const ratio = (r: number, c: number, m: number) =>
    Math.max(r / m, READOUT_FLOOR) / Math.max(c / m, READOUT_FLOOR);
  if (perColumn) return ref.map((r, c) => ratio(r, cur[c]!, n));
  const sum = (a: Float64Array) => a.reduce((s, v) => s + v, 0);
  return new Float64Array(ref.length).fill(ratio(sum(ref), sum(cur), n * ref.length));
}

/** One DAC plane of the readout: its normalised input and its weight in the recombination. */
interface Plane {
  value: number;
  weight: number;
}

/**
 * The DAC's planes for a one-hot input of 1 divided by `divisor` (bound management's rounds),
 * quantised as `dac` in dac.ts does it. The readout drives a row at full scale: 1 is the largest
 * input, so a dynamic range (and a calibrated or learned one, unknown when the cells are
 * programmed) is 1; a fixed range `max` sees 1/max.
 */
function readoutPlanes(x: Crossbar, divisor: number): Plane[] {
  const d = x.dac;
  const range = d.kind === 'uniform' && d.range.kind === 'fixed' ? d.range.max : 1;
  const clips = range !== 1;
  if (d.kind === 'ideal') {
    const u = 1 / (range * divisor);
    return [{ value: clips ? Math.min(u, 1) : u, weight: 1 }];
  }
  const f = Math.fround;
  const levels = signedLevels(d.bits);
  const scaled =
    divisor === 1 ? f(levels / range) : f(f(1 / f(range * divisor)) / f(2 * f(1 / (2 * levels))));
  const code = Math.min(roundHalfEven(scaled), levels);
  if (d.mode === 'pwm') return [{ value: code / levels, weight: 1 }];
  return Array.from({ length: d.bits - 1 }, (_, k) => ({
    value: Math.floor(code / 2 ** k) % 2,
    weight: 2 ** k / levels,
  }));
}

/** Cells of a programmed layer in `programWeights`' layout, [slices, rowTiles, rows, out]. */
export interface CellView {
  weights: Float32Array;
  /** (G+² + G−²)/ΔG², same layout; empty without read noise. */
  squares: Float32Array;
  sliceWeights: readonly number[];
  rowTiles: number;
  rows: number;
  outDim: number;
}

/**
 * Reads one tile (row tile `t`, columns `ct`) with one-hot inputs through the periphery, as
 * the analog MVM computes each output (mvm.ts, products.ts): per DAC plane and weight slice
 * u·w + sqrt(σ_R²·u²·squares + σ_out²)·ξ, converted by the ADC and recombined; with iterative
 * bound management a vector (a row's outputs over the column tile) whose conversions saturate
 * is read again with its input halved, fresh noise, and the result scaled back. → Σ|output|
 * per column over the tile's rows, in normalised units.
 */
export function readTile(
  cells: CellView,
  x: Crossbar,
  t: number,
  rt: Span,
  ct: Span,
  rng: Rng,
): Float64Array {
  const { weights, squares, sliceWeights, rowTiles, rows, outDim } = cells;
  const sigmaR = x.readNoise.kind === 'relative' ? x.readNoise.sigma : 0;
  const sigmaOut = x.outputNoise.kind === 'gaussian' ? x.outputNoise.sigma : 0;
  const adc = x.adc;
  const step = adcStep(x, rows);
  const levels = adc.kind === 'uniform' ? signedLevels(adc.bits) : Infinity;
  const bound = adcBound(x, rows);
  const threshold =
    adc.kind === 'uniform' ? saturationThreshold(levels, topCodeSaturates(levels, bound)) : Infinity;
  const rounds = boundManagementRounds(x);
  const planesOf = Array.from({ length: rounds }, (_, r) => readoutPlanes(x, 2 ** r));
  const sums = new Float64Array(ct.size);
  const out = new Float64Array(ct.size);
  for (let i = 0; i < rt.size; i++) {
    for (let r = 0; r < rounds; r++) {
      out.fill(0);
      let saturated = false;
      for (let c = 0; c < ct.size; c++) {
        for (let j = 0; j < sliceWeights.length; j++) {
          const at = ((j * rowTiles + t) * rows + i) * outDim + ct.start + c;
          const w = weights[at]!;
          const sq = sigmaR > 0 ? squares[at]! : 0;
          for (const p of planesOf[r]!) {
            const sd = Math.sqrt(sigmaR * sigmaR * p.value * p.value * sq + sigmaOut * sigmaOut);
            const pre = (p.value * w + (sd > 0 ? sd * rng.normal() : 0)) / step;
            if (Math.abs(pre) > threshold) saturated = true;
            const code = levels === Infinity ? pre : Math.max(-levels, Math.min(levels, roundHalfEven(pre)));
            out[c]! += code * step * p.weight * sliceWeights[j]!;
          }
        }
      }
      if (!saturated || r === rounds - 1) {
        for (let c = 0; c < ct.size; c++) sums[c]! += Math.abs(out[c]! * 2 ** r);
        break;
      }
    }
  }
  return sums;
}
