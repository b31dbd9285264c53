/**
 * Monte Carlo evaluation on hardware: the ideal metric, then the metric of `repeats` instances,
 * each with its own programming of the static weights (per-run noise and K/V writes stay
 * fresh at every batch). Instance i is determined by seed `seed + i` alone.
 */
import type { EvalData } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import type { MetricName } from '../eval/metrics.js';
import type { Model } from '../models/index.js';
import type { Provider } from '../runtime/session.js';
import { AnalogModel } from './analog-model.js';
import type { ConductanceTransform } from './dynamic.js';
import type { ResolvedSpec } from './resolve.js';

export interface MonteCarloOptions {
  repeats: number;
  seed: number;
  batch?: number;
  provider?: Provider;
  /** Per-tile input ranges of the static layers (calibrated or learned; see AnalogModel.inputRanges). */
  inputRanges?: ReadonlyMap<string, Float32Array>;
  /** Per-column conductance scales η of the static layers (calibrated or learned; see AnalogModel.columnScales). */
  columnScales?: ReadonlyMap<string, Float32Array>;
  /** The K/V conductance transform per attention product name (ClipFormer), if any. */
  kvTransform?: (name: string) => ConductanceTransform | undefined;
  /** Called after each instance (progress, resumable logs). */
  onInstance?: (i: number, value: number) => void;
}

export interface MonteCarloResult {
  metric: MetricName;
  ideal: number;
  mean: number;
  std: number;
  values: number[];
  seeds: number[];
  repeats: number;
  n: number;
  hw: string;
  timeS: number;
  seconds: number;
}

export const meanStd = (v: readonly number[]): { mean: number; std: number } => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = v.length > 1 ? Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1)) : 0;
  return { mean, std };
};

export async function monteCarlo(
  model: Model,
  data: EvalData,
  hw: ResolvedSpec,
  o: MonteCarloOptions,
): Promise<MonteCarloResult> {
  const t0 = performance.now();
  const common = { ...(o.batch ? { batch: o.batch } : {}), ...(o.provider ? { provider: o.provider } : {}) };
  const ideal = await evaluate(model, data, common);
  const values: number[] = [];
  const seeds: number[] = [];
  for (let i = 0; i < o.repeats; i++) {
    // everything random about instance i (programming, and the streams of per-run noise in
    // its own session) follows from its seed, so any instance can be rerun alone
    const seed = o.seed + i;
    const analog = new AnalogModel(hw, seed, o.kvTransform);
    if (o.inputRanges) analog.setInputRanges(o.inputRanges);
    if (o.columnScales) analog.setColumnScales(o.columnScales);
    await analog.prepare(model);
    const matmuls = analog.matmuls();
    const r = await evaluate(model, data, { ...common, matmuls, fresh: true });
    values.push(r.value);
    seeds.push(seed);
    o.onInstance?.(i, r.value);
  }
  return {
    metric: ideal.metric,
    ideal: ideal.value,
    ...meanStd(values),
    values,
    seeds,
    repeats: o.repeats,
    n: data.size,
    hw: hw.spec.name,
    timeS: hw.spec.timeS,
    seconds: (performance.now() - t0) / 1e3,
  };
}
