/** Runs a model over evaluation data in batches and scores it. */
import type { HostArray } from '../graph/ndarray.js';
import type { Tensor } from '../graph/tensor.js';
import type { MetricName } from '../io/glue.js';
import type { Matmuls } from '../models/encoder.js';
import type { GraphShape } from '../models/family.js';
import type { Model } from '../models/index.js';
import type { Provider } from '../runtime/session.js';
import { progress } from '../util/progress.js';
import type { EvalData } from './data.js';
import { metric } from './metrics.js';
import { Predictor } from './predict.js';

export interface EvalOptions {
  batch?: number;
  /** Private sessions whose random streams restart (Monte Carlo reproducibility). */
  fresh?: boolean;
  provider?: Provider;
  matmuls?: Matmuls;
  /** Extra graph outputs and their consumer per batch (e.g. AttentionSnr). */
  outputs?: (shape: GraphShape) => Record<string, Tensor>;
  onOutputs?: (outs: Record<string, HostArray>) => void;
  /** Progress label; none hides the bar. */
  label?: string;
}

export interface EvalResult {
  /** The main metric and its value. */
  metric: MetricName;
  value: number;
  n: number;
  metrics: Partial<Record<MetricName, number>>;
  /** Predicted class (or score) per example. */
  predictions: Float64Array;
  seconds: number;
}

/** The batch and provider of `o`, where set: the options every evaluation of a run shares. */
export const runOn = (o: { batch?: number | undefined; provider?: Provider | undefined }) => ({
  ...(o.batch ? { batch: o.batch } : {}),
  ...(o.provider ? { provider: o.provider } : {}),
});

/** Argmax per row, or the score of a one-output regression head. */
export function decide(logits: HostArray, regression: boolean): Float64Array {
  const [b, k] = logits.shape as [number, number];
  const d = logits.data as Float32Array;
  return Float64Array.from({ length: b }, (_, i) => {
    if (regression) return d[i * k]!;
    let best = 0;
    for (let j = 1; j < k; j++) if (d[i * k + j]! > d[i * k + best]!) best = j;
    return best;
  });
}

/** Examples per forward when the caller names none (noise drawn per run depends on it). */
export const EVAL_BATCH = 32;

export async function evaluate(model: Model, data: EvalData, opts: EvalOptions = {}): Promise<EvalResult> {
  const batch = opts.batch ?? EVAL_BATCH;
  const t0 = performance.now();
  const predictions = new Float64Array(data.size);
  const bar = progress(opts.label ?? '', data.size, { quiet: !opts.label });
  const predictor = new Predictor(model, {
    ...(opts.fresh ? { fresh: true } : {}),
    ...(opts.provider ? { provider: opts.provider } : {}),
    ...(opts.matmuls ? { matmuls: opts.matmuls } : {}),
    ...(opts.outputs ? { outputs: opts.outputs } : {}),
  });
  const take = (s: number, e: number, outs: Record<string, HostArray>) => {
    opts.onOutputs?.(outs);
    predictions.set(decide(outs['logits']!, data.regression), s);
    bar.tick(e - s);
  };
  // On the GPU two batches are in flight: the next is submitted before this one is read back, so
  // that the host's work (reading and uploading the next batch, encoding its run) overlaps the GPU's.
  const depth = opts.provider === 'webgpu' ? 2 : 1;
  const inFlight: { s: number; e: number; outs: Promise<Record<string, HostArray>> }[] = [];
  const takeFirst = async () => {
    const { s, e, outs } = inFlight.shift()!;
    take(s, e, await outs);
  };
  try {
    for (let s = 0; s < data.size; s += batch) {
      const e = Math.min(s + batch, data.size);
      const outs = predictor.run(data.inputs(s, e), s);
      // a failure surfaces where it is awaited, not as an unhandled rejection before
      outs.catch(() => undefined);
      inFlight.push({ s, e, outs });
      if (inFlight.length === depth) await takeFirst();
    }
    while (inFlight.length) await takeFirst();
  } finally {
    bar.stop();
    await predictor.release();
  }
  const metrics = Object.fromEntries(data.metrics.map((m) => [m, metric(m, predictions, data.targets)]));
  const main = data.metrics[0]!;
  return {
    metric: main,
    value: metrics[main]!,
    n: data.size,
    metrics,
    predictions,
    seconds: (performance.now() - t0) / 1e3,
  };
}
