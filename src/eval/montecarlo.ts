/**
 * Monte Carlo evaluation on hardware: the ideal metric, then the metric of `repeats` instances
 * of a hardware model, each with its own programming of the static weights (per-run noise and
 * K/V writes stay fresh at every batch). Instance i is `instance(seed + i)`, determined by that
 * seed alone; the caller builds it (analog/instances.ts for the analog model).
 */
import type { MetricName } from '../io/glue.js';
import type { Matmuls } from '../models/encoder.js';
import type { Model } from '../models/index.js';
import type { Provider } from '../runtime/session.js';
import { meanStd } from '../util/math.js';
import type { EvalData } from './data.js';
import { evaluate, runOn } from './evaluate.js';

/** The products of the instance of seed `seed`: everything random about it follows from the seed. */
export type Instance = (seed: number) => Promise<Matmuls>;

export interface MonteCarloOptions {
  repeats: number;
  seed: number;
  batch?: number;
  provider?: Provider;
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
  seconds: number;
}

export async function monteCarlo(
  model: Model,
  data: EvalData,
  instance: Instance,
  o: MonteCarloOptions,
): Promise<MonteCarloResult> {
  const t0 = performance.now();
  const common = runOn(o);
  const ideal = await evaluate(model, data, common);
  const values: number[] = [];
  const seeds: number[] = [];
  for (let i = 0; i < o.repeats; i++) {
    // the instance's programming and the streams of per-run noise in its own session follow
    // from its seed, so any instance can be rerun alone
    const seed = o.seed + i;
    const r = await evaluate(model, data, { ...common, matmuls: await instance(seed), fresh: true });
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
    seconds: (performance.now() - t0) / 1e3,
  };
}
