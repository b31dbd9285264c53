/**
 * A calibrated ADC range (`adc.range.kind: calibrated`): per row tile and column of every mapped
 * static layer, ±the K-th percentile of |value before the ADC| over every conversion that
 * column's ADC makes for N calibration inputs, in normalised output units. The convention of
 * simulators that set the ADC's reference from the partial sums a layer produces on data, and of
 * the post-training paper's I_S chosen from the column currents, per column.
 *
 * The values are those of the noise-free crossbars (programmed without noise or drift, no read
 * or output noise) driven through the spec's DAC by the floating-point model's activations, as
 * the input-range calibration (pto.ts) takes them: the ranges belong to the design, not to a
 * Monte Carlo instance, so one calibration serves them all. They are computed by the analog
 * MVM's own graph (mvm.ts), so they see the DAC planes and weight slices exactly as the kernels
 * convert them. The planes and slices of a column are pooled into one range: the input planes
 * are conversions by the same ADC one after another, and a range per slice would be a reference
 * per slice column that neither convention keeps (and a per-column value is what the digital
 * gain already holds).
 */

import { adcStep } from '../analog/adc.js';
import { AnalogModel } from '../analog/analog-model.js';
import { splitDim } from '../analog/program.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import { type Crossbar, isPerfect } from '../analog/spec.js';
import type { EvalData } from '../eval/data.js';
import type { Tensor } from '../graph/tensor.js';
import { digital } from '../models/encoder.js';
import type { Model } from '../models/index.js';
import { layerKind } from '../models/layer-names.js';
import { compile, feedsFor } from '../runtime/session.js';
import { InputError } from '../util/errors.js';
import { percentile } from './pto.js';

/** Static layers of `model` whose ADC range is 'calibrated', with their crossbars and tile rows. */
function calibratedLayers(hw: ResolvedSpec, model: Model) {
  return model.linearLayers().flatMap(({ name, weight }) => {
    if (!hw.spec.mapped[layerKind(name)]) return [];
    const xbar = hw.crossbar(name);
    const r = xbar.adc.kind === 'uniform' ? xbar.adc.range : null;
    if (isPerfect(xbar) || r?.kind !== 'calibrated') return [];
    const tiles = splitDim(weight.shape[0]!, xbar.tile.rows, xbar.tile.split);
    const rows = Math.max(...tiles.map((t) => t.size));
    return [{ name, xbar, rows, percentile: r.percentile, samples: r.samples }];
  });
}

/** The crossbar without noise or drift, its ADC at full scale: the values before the ADC are then in full-scale steps. */
const noiseFree = (x: Crossbar): Crossbar => ({
  ...x,
  program: { kind: 'none' },
  readNoise: { kind: 'none' },
  drift: { kind: 'none' },
  outputNoise: { kind: 'none' },
  ...(x.adc.kind === 'uniform' ? { adc: { ...x.adc, range: { kind: 'full' } } } : {}),
});

/**
 * Per (row tile, column) [R·C], the `q`-th percentile of |v| over the values before the ADC of one
 * layer: `pre`, one [J, R, N, C] array per input plane, in full-scale steps (`rows`/`levels`
 * normalised units each); → normalised output units, at least 1e-30 (a column that never
 * conducts still needs a range to divide by).
 */
export function columnPercentiles(
  pre: readonly Float32Array[],
  shape: readonly [number, number, number, number],
  q: number,
  step: number,
): Float32Array {
  const [J, R, N, C] = shape;
  const out = new Float32Array(R * C);
  const v = new Float32Array(pre.length * J * N);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) {
      let k = 0;
      for (const plane of pre)
        for (let j = 0; j < J; j++)
          for (let n = 0; n < N; n++) v[k++] = Math.abs(plane[((j * R + r) * N + n) * C + c]!);
      out[r * C + c] = Math.max(percentile(v, q) * step, 1e-30);
    }
  }
  return out;
}

/**
 * The calibrated ADC ranges of every static layer whose spec says `adc.range.kind: calibrated`,
 * from the first `samples` examples of `calib` (each layer its own count), through the DAC with
 * `inputRanges` (calibrated or learned, where the spec has them) and the columns' η
 * `columnScales`. Empty when no layer asks for them.
 */
export async function calibrateAdcRanges(
  model: Model,
  openCalibration: () => EvalData,
  hw: ResolvedSpec,
  ranges: {
    inputRanges?: ReadonlyMap<string, Float32Array>;
    columnScales?: ReadonlyMap<string, Float32Array>;
  } = {},
  log: (line: string) => void = () => {},
): Promise<Map<string, Float32Array>> {
  const layers = calibratedLayers(hw, model);
  const out = new Map<string, Float32Array>();
  if (layers.length === 0) return out;
  const n = Math.max(...layers.map((l) => l.samples));
  const calib = openCalibration();
  if (calib.size < n) {
    throw new InputError(
      `adc.range.samples ${n}: the calibration data ${calib.name} has only ${calib.size} examples`,
    );
  }
  const probed = new Map(layers.map((l) => [l.name, l]));
  const analog = new AnalogModel({ ...hw, crossbar: (name) => noiseFree(hw.crossbar(name)) });
  if (ranges.inputRanges) analog.setInputRanges(ranges.inputRanges);
  if (ranges.columnScales) analog.setColumnScales(ranges.columnScales);
  const pre = new Map<string, readonly Tensor[]>();
  analog.probe = (name, values) => {
    if (probed.has(name)) pre.set(name, values);
  };
  const { feeds, shape } = model.feeds(calib.inputs(0, n));
  // floating-point activations flow on; each calibrated layer's crossbars are probed beside them
  model.graph(shape, {
    ...digital,
    linear: (name, x, w, b) => {
      if (probed.has(name)) analog.linear(name, x, w, b);
      return digital.linear(name, x, w, b);
    },
  });
  const outputs: Record<string, Tensor> = {};
  for (const [name, planes] of pre) for (const [k, p] of planes.entries()) outputs[`${name}#${k}`] = p;
  const g = await compile(outputs, { cache: false });
  const values = await g.run(feedsFor(g, feeds));
  for (const l of layers) {
    const planes = pre.get(l.name)!;
    const [J, R, N, C] = planes[0]!.shape as [number, number, number, number];
    // each layer its own first `samples` examples: the rows of N come example by example
    const mine = (l.samples * N) / n;
    const arrays = planes.map((_, k) => {
      const a = values[`${l.name}#${k}`]!.data as Float32Array;
      if (mine === N) return a;
      const part = new Float32Array(J * R * mine * C);
      for (let jr = 0; jr < J * R; jr++) part.set(a.subarray(jr * N * C, (jr * N + mine) * C), jr * mine * C);
      return part;
    });
    out.set(l.name, columnPercentiles(arrays, [J, R, mine, C], l.percentile, adcStep(l.xbar, l.rows)));
  }
  log(
    `ADC ranges of ${layers.length} layers calibrated per column on the first ${n} examples of ${calib.name}`,
  );
  return out;
}
