/**
 * The analog MVM as graph ops: DAC → crossbar products per bit slice (and input bit) → read and
 * output noise → ADC, with bound management's rounds → shift-add. Works in normalised units:
 * inputs in [−1, 1] of the DAC range, weights (G+ − G−)/ΔG, so a device at G_MAX driven by a
 * full-scale input adds 1. `nativeMvm` computes the same in one native call where it applies.
 */
import { cond, type Tensor, where } from '../graph/tensor.js';
import { seedFor } from '../util/math.js';
import {
  adcBound,
  adcStep,
  anyAbove,
  boundManagementRounds,
  saturationThreshold,
  tilePeaks,
  tileSelect,
  topCodeSaturates,
} from './adc.js';
import { dac } from './dac.js';
import { type Mvm, products } from './products.js';
import { signedLevels } from './spec.js';

/**
 * DAC → crossbar products → ADC of `m`'s tiled inputs x [(…), R, N, rows], with the ADC's bound
 * management, then `finish`: the digital gain of codes [(…), R, N, C] in ADC steps (as
 * `Products.codes`) with the DAC range [(…), R, N, 1]. `columnTiles`: widths of the column
 * tiles along C (a vector is re-run per row tile and column tile, as each is its own crossbar
 * and periphery).
 *
 * Iterative bound management unrolls its rounds with divisors r = 2, 4, … (input divided by r,
 * fresh DAC quantisation and noise, result × r; `boundManagementRounds`) behind two `cond`s:
 * round 2 runs only when some vector saturated in round 1, the rest only when some vector still
 * saturated in round 2; each vector takes the first round in which its column tile did not
 * saturate, or the last. With no saturation the cost is two reductions (max and min) that read
 * the outputs once each. The later rounds share one noise draw, independent of round 1's: an
 * output takes one round's value, and on the CPU every noise input is drawn at every run,
 * whether its round runs or not (one draw for rounds 2… instead of one each; on the GPU a
 * round's noise is drawn in its kernels, which run only with their round).
 */
export function analogMvm(
  m: Mvm,
  columnTiles: readonly number[],
  finish: (codes: Tensor, range: Tensor) => Tensor,
): Tensor {
  const { x, xbar, tileRanges, seed } = m;
  const d = dac(x, xbar, tileRanges);
  const n = boundManagementRounds(xbar);
  const first = products(d, m);
  m.probe?.(first.pre, adcStep(xbar, m.rows));
  if (n === 1 || xbar.adc.kind !== 'uniform') return finish(first.codes(false), d.range);
  const levels = signedLevels(xbar.adc.bits);
  const bound = adcBound(xbar, m.rows);
  const threshold = saturationThreshold(levels, topCodeSaturates(levels, bound));
  /** Round k (divisor 2^(k−1)) for the vectors whose `peak` in round k − 1 saturated. */
  const refine = (k: number, prev: Tensor, peak: Tensor): Tensor => {
    const divisor = 2 ** (k - 1);
    const saturated = peak.greater(threshold);
    const r = products(dac(x, xbar, tileRanges, divisor, d.range), m, seedFor(seed, 'bm'));
    const merged = tileSelect(saturated, r.codes(false).mul(divisor), prev, columnTiles);
    if (k === n) return merged;
    const still = where(saturated, tilePeaks(r.pre, columnTiles), 0);
    // round 2 settles most vectors: rounds 3… run together, behind one more test, since ONNX
    // Runtime creates two subgraphs for every cond
    const next = refine(k + 1, merged, still);
    return k === 2 ? cond(still.max().greater(threshold), next, merged) : next;
  };
  // `finish` (the digital gain) runs inside both branches: the else branch then writes the
  // result directly instead of copying the codes out of the If. There nothing saturated, so
  // its ADC rounds without clipping
  return cond(
    anyAbove(first.pre, threshold),
    finish(refine(2, first.codes(false), tilePeaks(first.pre, columnTiles)), d.range),
    finish(first.codes(true), d.range),
  );
}
