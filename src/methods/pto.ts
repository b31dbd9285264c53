/**
 * Post-training range optimisation (Lammie et al., ISCAS 2024; METHODS.md §3, Algorithm 1),
 * input side: the DAC range of every input tile of every mapped static layer is the K-th
 * percentile of |x| over the entries that tile receives for N calibration inputs. Values beyond
 * it clip; the rest use the DAC's levels more fully than a max-based range would.
 *
 * The activations are those of the floating-point model on the calibration inputs (what the
 * paper calibrates on before programming), so the ranges do not depend on a Monte Carlo
 * instance and one calibration serves them all. Calibration inputs come from a split the
 * evaluation never scores (the training split by default).
 *
 * API: `calibrateInputRanges(model, () => calibrationData, spec)` → Map(layer → per-tile ranges), which
 * `AnalogModel.setInputRanges` (or `monteCarlo`'s `inputRanges`) applies without reprogramming.
 */
import { layerKind } from '../analog/analog-model.js';
import { isPerfect } from '../analog/mvm.js';
import { crossbarFor } from '../analog/presets.js';
import { splitDim } from '../analog/program.js';
import type { HardwareSpec } from '../analog/spec.js';
import type { EvalData } from '../eval/data.js';
import { modelFeeds } from '../eval/predict.js';
import type { Tensor } from '../graph/tensor.js';
import { digital, type Matmuls } from '../models/encoder.js';
import type { Model } from '../models/index.js';
import { compile } from '../runtime/session.js';

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
function calibratedLayers(spec: HardwareSpec, names: readonly string[]) {
  return names.flatMap((name) => {
    if (!spec.mapped[layerKind(name)]) return [];
    const xbar = crossbarFor(spec, name);
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
  spec: HardwareSpec,
  log: (line: string) => void = () => {},
  /**
   * The products the calibration inputs flow through: floating point by default; an
   * `AnalogModel`'s (with dynamic input ranges) to calibrate on the chip as it is at some
   * time — the paper's re-calibration of a drifted, already programmed instance.
   */
  through: Matmuls = digital,
): Promise<Map<string, Float32Array>> {
  const recorded: Record<string, Tensor> = {};
  const recorder: Matmuls = {
    ...through,
    linear: (name, x, w, b) => {
      const inDim = x.shape.at(-1)!;
      recorded[name] = x.reshape([x.size / inDim, inDim]);
      return through.linear(name, x, w, b);
    },
  };
  const probe = calibratedLayers(spec, probeNames(model));
  const ranges = new Map<string, Float32Array>();
  if (probe.length === 0) return ranges;
  const n = Math.max(...probe.map((l) => l.samples));
  const calib = openCalibration();
  if (calib.size < n) {
    throw new RangeError(
      `dac.range.samples ${n}: the calibration data ${calib.name} has only ${calib.size} examples`,
    );
  }
  const { feeds, batch, seqLen } = modelFeeds(model, calib.inputs(0, n));
  model.graph(seqLen === undefined ? { batch } : { batch, seqLen }, recorder);
  const wanted = Object.fromEntries(probe.map((l) => [l.name, recorded[l.name]!]));
  const g = await compile(wanted, { cache: through === digital });
  const out = await g.run(
    Object.fromEntries(g.inputs.filter((i) => !i.param).map((i) => [i.name, feeds[i.name]!])),
  );
  for (const l of probe) {
    const x = out[l.name]!;
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

/** The names of a model's static layers, in graph order (from a throwaway digital graph). */
function probeNames(model: Model): string[] {
  const names: string[] = [];
  const m: Matmuls = {
    ...digital,
    linear: (name, x, w, b) => (names.push(name), digital.linear(name, x, w, b)),
  };
  model.graph({ batch: 1, seqLen: 8 }, m);
  return names;
}
