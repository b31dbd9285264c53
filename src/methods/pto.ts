/**
 * Post-training range optimisation (Lammie et al., ISCAS 2024; docs/methods.md §3, Algorithm 1),
 * input side: the DAC range of every input tile of every mapped static layer is the K-th
 * percentile of |x| over the entries that tile receives for N calibration inputs. Values beyond
 * it clip; the rest use the DAC's levels more fully than a max-based range would.
 *
 * The activations are those of the floating-point model on the calibration inputs (what the
 * paper calibrates on before programming), so the ranges do not depend on a Monte Carlo
 * instance and one calibration serves them all. Calibration inputs come from a split the
 * evaluation never scores (the training split by default).
 *
 * API: `calibrateInputRanges(model, () => calibrationData, loadSpec(hw, sets, model))` → Map(layer → per-tile ranges), which
 * `AnalogModel.setInputRanges` (or `monteCarlo`'s `inputRanges`) applies without reprogramming.
 */
import { programWeights, splitDim } from '../analog/program.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import { type Crossbar, isPerfect } from '../analog/spec.js';
import type { EvalData } from '../eval/data.js';
import { recordLayerInputs, tapLayers } from '../eval/predict.js';
import { type HostArray, hostArray } from '../graph/ndarray.js';
import { constant, type Tensor } from '../graph/tensor.js';
import { digital, type Matmuls } from '../models/encoder.js';
import type { Model } from '../models/index.js';
import { layerKind } from '../models/layer-names.js';
import { compile, feedsFor } from '../runtime/session.js';
import { InputError } from '../util/errors.js';
import { Rng } from '../util/math.js';

/** The q-th percentile (0..100) of `v`, linear between order statistics (NumPy's default). Sorts `v`. */
export function percentile(v: Float32Array, q: number): number {
  if (v.length === 0) throw new RangeError('percentile of no values');
  v.sort();
  const pos = (q / 100) * (v.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, v.length - 1);
  return v[lo]! + (v[hi]! - v[lo]!) * (pos - lo);
}

/** Static layers whose DAC range is 'calibrated', with their crossbars. */
function calibratedLayers(hw: ResolvedSpec, names: readonly string[]) {
  return names.flatMap((name) => {
    if (!hw.spec.mapped[layerKind(name)]) return [];
    const xbar = hw.crossbar(name);
    if (isPerfect(xbar) || xbar.dac.kind !== 'uniform' || xbar.dac.range.kind !== 'calibrated') return [];
    return [{ name, xbar, percentile: xbar.dac.range.percentile, samples: xbar.dac.range.samples }];
  });
}

/** Per-tile |x| percentiles of one layer's inputs x [M, in] (row-major). */
export function tilePercentiles(
  x: Float32Array,
  inDim: number,
  tiles: readonly { start: number; size: number }[],
  q: number,
): Float32Array {
  const m = x.length / inDim;
  return Float32Array.from(tiles, (t) => {
    const v = new Float32Array(m * t.size);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < t.size; j++) v[i * t.size + j] = Math.abs(x[i * inDim + t.start + j]!);
    }
    // an all-zero tile still needs a positive range to divide by
    return Math.max(percentile(v, q), 1e-30);
  });
}

/**
 * The calibrated input ranges of every static layer whose spec says `dac.range.kind:
 * calibrated`, from the first `samples` examples of `calib` (the largest `samples` any such
 * layer asks for; each layer uses its own count). Empty when no layer is calibrated.
 */
export async function calibrateInputRanges(
  model: Model,
  openCalibration: () => EvalData,
  hw: ResolvedSpec,
  log: (line: string) => void = () => {},
  /**
   * The products the calibration inputs flow through: floating point by default; an
   * `AnalogModel`'s (with dynamic input ranges) to calibrate on the chip as it is at some
   * time — the paper's re-calibration of a drifted, already programmed instance.
   */
  through: Matmuls = digital,
): Promise<Map<string, Float32Array>> {
  const probe = calibratedLayers(
    hw,
    model.linearLayers().map((l) => l.name),
  );
  const ranges = new Map<string, Float32Array>();
  if (probe.length === 0) return ranges;
  const n = Math.max(...probe.map((l) => l.samples));
  const calib = openCalibration();
  if (calib.size < n) {
    throw new InputError(
      `dac.range.samples ${n}: the calibration data ${calib.name} has only ${calib.size} examples`,
    );
  }
  const inputs = await recordLayerInputs(
    model,
    calib.inputs(0, n),
    probe.map((l) => l.name),
    through,
  );
  for (const l of probe) {
    const x = inputs.get(l.name)!;
    const inDim = x.shape[1]!;
    const rowsPerExample = x.shape[0]! / n;
    // each layer uses its own sample count: the first `samples` examples' rows
    const mine = (x.data as Float32Array).subarray(0, l.samples * rowsPerExample * inDim);
    ranges.set(
      l.name,
      tilePercentiles(mine, inDim, splitDim(inDim, l.xbar.tile.rows, l.xbar.tile.split), l.percentile),
    );
  }
  log(`input ranges of ${probe.length} layers calibrated on the first ${n} examples of ${calib.name}`);
  return ranges;
}

/** η of one column: I_S / (μ + L·σ) where that exceeds the ADC's saturation I_S, else 1. */
export function columnEta(mean: number, std: number, sigmas: number, saturation: number): number {
  const peak = mean + sigmas * std;
  return peak > saturation ? saturation / peak : 1;
}

/** How much of one layer the conductance rule touched: columns shrunk, and the share of calibration currents beyond ±I_S. */
export interface SaturationCounts {
  shrunk: number;
  columns: number;
  beyond: number;
}

/** Static layers whose conductance range is 'calibrated', with their crossbars. */
function conductanceLayers(hw: ResolvedSpec, names: readonly string[]) {
  return names.flatMap((name) => {
    if (!hw.spec.mapped[layerKind(name)]) return [];
    const xbar = hw.crossbar(name);
    const r = xbar.mapping.conductanceRange;
    if (isPerfect(xbar) || r.kind !== 'calibrated') return [];
    if (xbar.adc.kind === 'uniform' && xbar.adc.range.kind === 'calibrated') {
      throw new InputError(
        `${name}: mapping.conductanceRange 'calibrated' shrinks columns to the ADC's saturation I_S; with adc.range 'calibrated' there is none to shrink to: use adc.range 'full' or 'fixed'`,
      );
    }
    if (xbar.dac.kind === 'uniform' && xbar.dac.mode === 'bitSerial') {
      throw new InputError(
        `${name}: mapping.conductanceRange 'calibrated' models the PWM crossbars of the post-training paper; with dac.mode 'bitSerial' use 'full'`,
      );
    }
    return [{ name, xbar, sigmas: r.sigmas, samples: r.samples, current: r.current }];
  });
}

/**
 * Conductance-range optimisation (Algorithm 1 of the post-training paper): for every static
 * layer whose spec says `mapping.conductanceRange.kind: calibrated`, the current of every column
 * of every row tile — the noise-free x_n·W the ADC converts, in its units — over the rows of N
 * calibration inputs; where μ + L·σ of I exceeds the ADC saturation I_S, the column's G_MAX
 * shrinks by I_S / (μ + L·σ) and the digital gain grows by as much (applied by
 * `AnalogModel.setColumnScales`, which reprograms). I is signed, as the paper's statistics are;
 * `current: 'magnitude'` takes them over |I| instead, which also sees a column that saturates
 * at −I_S. Inputs are normalised as the DAC does: by max|x| per vector (dynamic), or by the
 * per-tile `inputRanges` of a previous input-range calibration, clipped. The log line of each
 * layer says how many columns shrank and what share of the calibration currents lay beyond ±I_S.
 */
export async function calibrateConductanceRanges(
  model: Model,
  openCalibration: () => EvalData,
  hw: ResolvedSpec,
  inputRanges: ReadonlyMap<string, Float32Array> = new Map(),
  /** Called once per layer with its line and its counts (for a saturation summary). */
  log: (line: string, counts: SaturationCounts) => void = () => {},
  /**
   * η the columns already have (learned in training): the currents are those of the columns
   * at these ranges, and the result multiplies them (the paper's PTO after learned ranges).
   */
  startScales: ReadonlyMap<string, Float32Array> = new Map(),
): Promise<Map<string, Float32Array>> {
  const layers = conductanceLayers(
    hw,
    model.linearLayers().map((l) => l.name),
  );
  const scales = new Map<string, Float32Array>();
  if (layers.length === 0) return scales;
  const n = Math.max(...layers.map((l) => l.samples));
  const calib = openCalibration();
  if (calib.size < n) {
    throw new InputError(
      `mapping.conductanceRange.samples ${n}: the calibration data ${calib.name} has only ${calib.size} examples`,
    );
  }
  const { taps, feeds } = tapLayers(model, calib.inputs(0, n));
  const outputs: Record<string, Tensor> = {};
  const plans = layers.map((l) => {
    const { x, w } = taps.get(l.name)!;
    const value = (w.attrs as { value: HostArray }).value;
    // the devices' targets without noise or drift: what the ADC would see from a perfect chip
    const ideal: Crossbar = { ...l.xbar, program: { kind: 'none' }, drift: { kind: 'none' } };
    const p = programWeights(value, ideal, 0, new Rng(0), startScales.get(l.name));
    const adc = l.xbar.adc;
    const saturation =
      adc.kind === 'uniform' ? (adc.range.kind === 'fixed' ? adc.range.max : p.rows) : Infinity;
    const rowsPerExample = x.shape[0]! / n;
    const xs = x.slice(0, 0, l.samples * rowsPerExample);
    const ranges = inputRanges.get(l.name);
    p.rowTiles.forEach((t, r) => {
      const part = xs.slice(1, t.start, t.start + t.size);
      const xn = ranges
        ? part.div(ranges[r]!).clip(-1, 1)
        : part.div(part.abs().max(-1, true).maximum(1e-30));
      // slice 0 of the programmed weights: analog cells (PWM crossbars) have one slice
      const rowsOfTile = p.weights.subarray(r * p.rows * p.outDim, (r * p.rows + t.size) * p.outDim);
      const signed = xn.matmul(constant(hostArray('float32', [t.size, p.outDim], rowsOfTile.slice())));
      const current = l.current === 'magnitude' ? signed.abs() : signed;
      outputs[`${l.name}#${r}.mean`] = current.mean(0);
      outputs[`${l.name}#${r}.square`] = current.mul(current).mean(0);
      outputs[`${l.name}#${r}.beyond`] = signed.abs().greater(saturation).cast('float32').mean();
    });
    return { ...l, p, saturation };
  });
  const g = await compile(outputs, { cache: false });
  const out = await g.run(feedsFor(g, feeds));
  for (const { saturation, ...l } of plans) {
    const eta = new Float32Array(l.p.rowTiles.length * l.p.outDim).fill(1);
    let shrunk = 0;
    let beyond = 0;
    l.p.rowTiles.forEach((_, r) => {
      beyond += (out[`${l.name}#${r}.beyond`]!.data as Float32Array)[0]! / l.p.rowTiles.length;
      const mean = out[`${l.name}#${r}.mean`]!.data as Float32Array;
      const square = out[`${l.name}#${r}.square`]!.data as Float32Array;
      for (let c = 0; c < l.p.outDim; c++) {
        const std = Math.sqrt(Math.max(square[c]! - mean[c]! ** 2, 0));
        const e = columnEta(mean[c]!, std, l.sigmas, saturation);
        eta[r * l.p.outDim + c] = e * (startScales.get(l.name)?.[r * l.p.outDim + c] ?? 1);
        if (e < 1) shrunk++;
      }
    });
    scales.set(l.name, eta);
    log(
      `${l.name}: ${shrunk} of ${eta.length} columns shrunk (μ + ${l.sigmas}σ of ${l.current === 'magnitude' ? '|I|' : 'I'} above ${saturation}); ${(100 * beyond).toFixed(3)} % of calibration currents beyond ±${saturation}`,
      { shrunk, columns: eta.length, beyond },
    );
  }
  return scales;
}
