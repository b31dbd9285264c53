/**
 * A calibrated ADC range (`adc.range.kind: calibrated`): per row tile and column of every mapped
 * static layer and attention product, ±the K-th percentile of |value before the ADC| over every
 * conversion that column's ADC makes for N calibration inputs, in normalised output units: each
 * column's full scale set on data, where the post-training paper sets the column's conductances
 * to a fixed I_S instead (the same codes without noise).
 *
 * The values are those of the noise-free crossbars (programmed without noise or drift, no read
 * or output noise) driven through the spec's DAC by the floating-point model's activations, as
 * the input-range calibration (pto.ts) takes them: the ranges belong to the design, not to a
 * Monte Carlo instance, so one calibration serves them all. They are computed by the analog
 * MVM's own graph (mvm.ts), so they see the DAC planes and weight slices exactly as the kernels
 * convert them. The planes and slices of a column are pooled into one range: the input planes
 * are conversions by the same ADC one after another, and a range per slice would be a reference
 * per slice column that neither convention keeps (and a per-column value is what the digital
 * gain already holds). K and V are written anew for every input, into a crossbar per head: a
 * column (a key token of QKᵀ, a head dimension of S·V) has one range over the calibration
 * inputs and the heads.
 */
import { AnalogModel } from '../analog/analog-model.js';
import type { ConductanceTransform } from '../analog/dynamic.js';
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

/** What a calibrated ADC range asks for: its percentile and sample count; null for other ranges. */
function calibration(x: Crossbar | null) {
  const r = x?.adc.kind === 'uniform' ? x.adc.range : null;
  return r?.kind === 'calibrated' && !isPerfect(x!) ? { percentile: r.percentile, samples: r.samples } : null;
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
 * The calibrated ADC ranges of every static layer and attention product whose spec says
 * `adc.range.kind: calibrated`, from the first `samples` examples of `calib` (each product its
 * own count), through the DAC with `inputRanges` (calibrated or learned, where the spec has
 * them), the columns' η `columnScales` and the K/V conductance `kvTransform`. Empty when no
 * product asks for them.
 */
export async function calibrateAdcRanges(
  model: Model,
  openCalibration: () => EvalData,
  hw: ResolvedSpec,
  ranges: {
    inputRanges?: ReadonlyMap<string, Float32Array>;
    columnScales?: ReadonlyMap<string, Float32Array>;
    kvTransform?: (name: string) => ConductanceTransform | undefined;
  } = {},
  log: (line: string) => void = () => {},
): Promise<Map<string, Float32Array>> {
  const statics = new Map(
    model.linearLayers().flatMap(({ name }) => {
      const c = hw.spec.mapped[layerKind(name)] ? calibration(hw.crossbar(name)) : null;
      return c ? [[name, c] as const] : [];
    }),
  );
  const kv = calibration(hw.attention);
  const out = new Map<string, Float32Array>();
  if (statics.size === 0 && !kv) return out;
  const n = Math.max(...[...statics.values(), ...(kv ? [kv] : [])].map((c) => c.samples));
  const calib = openCalibration();
  if (calib.size < n) {
    throw new InputError(
      `adc.range.samples ${n}: the calibration data ${calib.name} has only ${calib.size} examples`,
    );
  }
  const analog = new AnalogModel(
    {
      ...hw,
      attention: hw.attention && noiseFree(hw.attention),
      crossbar: (name) => noiseFree(hw.crossbar(name)),
    },
    0,
    ranges.kvTransform,
  );
  if (ranges.inputRanges) analog.setInputRanges(ranges.inputRanges);
  if (ranges.columnScales) analog.setColumnScales(ranges.columnScales);
  // each product's values before the ADC, cut to its own first `samples` examples: static
  // layers' [J, R, N, C] hold the examples' tokens one after another along N, K/V's
  // [J, B, H, R, N, C] the examples along B
  const probed: { name: string; pre: Tensor[]; step: number; percentile: number }[] = [];
  analog.probe = (name, pre, step) => {
    const c = statics.get(name) ?? kv!;
    const cut = (p: Tensor) =>
      statics.has(name) ? p.slice(2, 0, (c.samples * p.shape[2]!) / n) : p.slice(1, 0, c.samples);
    probed.push({ name, pre: c.samples === n ? [...pre] : pre.map(cut), step, percentile: c.percentile });
  };
  const products = analog.matmuls();
  const { feeds, shape } = model.feeds(calib.inputs(0, n));
  // floating-point activations flow on; each calibrated product's crossbars are probed beside them
  model.graph(shape, {
    linear: (name, x, w, b) => {
      if (statics.has(name)) analog.linear(name, x, w, b);
      return digital.linear(name, x, w, b);
    },
    scores: (name, q, kT) => {
      if (kv) products.scores(name, q, kT);
      return digital.scores(name, q, kT);
    },
    mix: (name, s, v) => {
      if (kv) products.mix(name, s, v);
      return digital.mix(name, s, v);
    },
  });
  const outputs: Record<string, Tensor> = {};
  for (const { name, pre } of probed) for (const [k, p] of pre.entries()) outputs[`${name}#${k}`] = p;
  const g = await compile(outputs, { cache: false });
  const values = await g.run(feedsFor(g, feeds));
  for (const { name, pre, step, percentile: q } of probed) {
    // leading dims (slices, and K/V's examples and heads) pool with the vectors
    const [R, N, C] = pre[0]!.shape.slice(-3) as [number, number, number];
    const J = pre[0]!.size / (R * N * C);
    const arrays = pre.map((_, k) => values[`${name}#${k}`]!.data as Float32Array);
    out.set(name, columnPercentiles(arrays, [J, R, N, C], q, step));
  }
  log(
    `ADC ranges of ${probed.length} products calibrated per column on the first ${n} examples of ${calib.name}`,
  );
  return out;
}
