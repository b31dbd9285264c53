/**
 * Evaluation metrics of the GLUE tasks and image classification, with scikit-learn's and
 * SciPy's conventions (named at each function) so scores compare with published ones.
 */
import type { MetricName } from '../io/glue.js';
import { InputError } from '../util/errors.js';
import { Rng, wilson95 } from '../util/math.js';

type Values = ArrayLike<number>;

/** Checks that both inputs are non-empty, of one length, and finite; returns the length. */
function checkPair(metric: string, pred: Values, label: Values, min = 1): number {
  if (pred.length !== label.length) {
    throw new InputError(
      `${metric}: ${pred.length} predictions but ${label.length} labels; they must pair up`,
    );
  }
  if (pred.length < min) {
    const got = pred.length === 0 ? 'empty input' : `only ${pred.length} (prediction, label) pair`;
    throw new InputError(`${metric}: ${got}; needs at least ${min} pair${min > 1 ? 's' : ''}`);
  }
  for (const [name, xs] of [
    ['predictions', pred],
    ['labels', label],
  ] as const) {
    for (let i = 0; i < xs.length; i++) {
      if (!Number.isFinite(xs[i]))
        throw new InputError(`${metric}: ${name}[${i}] is ${xs[i]}, expected a finite number`);
    }
  }
  return pred.length;
}

export function accuracy(pred: Values, label: Values): number {
  const n = checkPair('accuracy', pred, label);
  let hits = 0;
  for (let i = 0; i < n; i++) if (pred[i] === label[i]) hits++;
  return hits / n;
}

/** Binary F1 of class 1 (sklearn `f1_score`); 0 when there is no positive prediction or label. */
export function f1(pred: Values, label: Values): number {
  const n = checkPair('f1', pred, label);
  let tp = 0;
  let fp = 0;
  let fn = 0;
  for (let i = 0; i < n; i++) {
    for (const [name, v] of [
      ['predictions', pred[i]],
      ['labels', label[i]],
    ] as const) {
      if (v !== 0 && v !== 1) throw new InputError(`f1: ${name}[${i}] is ${v}, expected 0 or 1 (binary F1)`);
    }
    if (pred[i] === 1 && label[i] === 1) tp++;
    else if (pred[i] === 1) fp++;
    else if (label[i] === 1) fn++;
  }
  const denom = 2 * tp + fp + fn;
  return denom === 0 ? 0 : (2 * tp) / denom; // sklearn's zero_division default
}

/**
 * Matthews correlation over any number of classes (sklearn `matthews_corrcoef`, Gorodkin's
 * R_K); 0 when either side holds a single class.
 */
export function matthewsCorrelation(pred: Values, label: Values): number {
  const n = checkPair('mcc', pred, label);
  const predCount = new Map<number, number>();
  const trueCount = new Map<number, number>();
  let correct = 0;
  for (let i = 0; i < n; i++) {
    predCount.set(pred[i]!, (predCount.get(pred[i]!) ?? 0) + 1);
    trueCount.set(label[i]!, (trueCount.get(label[i]!) ?? 0) + 1);
    if (pred[i] === label[i]) correct++;
  }
  let tp = 0; // Σ_k t_k p_k
  for (const [k, t] of trueCount) tp += t * (predCount.get(k) ?? 0);
  let pp = 0;
  for (const p of predCount.values()) pp += p * p;
  let tt = 0;
  for (const t of trueCount.values()) tt += t * t;
  const covYtYp = correct * n - tp;
  const covYpYp = n * n - pp;
  const covYtYt = n * n - tt;
  if (covYpYp * covYtYt === 0) return 0;
  return covYtYp / Math.sqrt(covYtYt * covYpYp);
}

/** Pearson's r (SciPy `pearsonr`); NaN when either side is constant, as SciPy returns. */
export function pearson(x: Values, y: Values): number {
  const n = checkPair('pearson', x, y, 2);
  let mx = 0;
  let my = 0;
  for (let i = 0; i < n; i++) {
    mx += x[i]!;
    my += y[i]!;
  }
  mx /= n;
  my /= n;
  // centred two-pass sums: one pass of raw moments loses digits on offset data
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = x[i]! - mx;
    const dy = y[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  if (sxx === 0 || syy === 0) return Number.NaN;
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** 1-based ranks, ties sharing the average of the ranks they span (SciPy `rankdata`, method 'average'). */
export function averageRanks(x: Values): Float64Array {
  const order = Array.from({ length: x.length }, (_, i) => i).sort((a, b) => x[a]! - x[b]!);
  const ranks = new Float64Array(x.length);
  for (let start = 0; start < order.length; ) {
    let end = start + 1;
    while (end < order.length && x[order[end]!] === x[order[start]!]) end++;
    const rank = (start + 1 + end) / 2; // mean of start+1 … end
    for (let k = start; k < end; k++) ranks[order[k]!] = rank;
    start = end;
  }
  return ranks;
}

/** Spearman's ρ: Pearson's r of the average ranks (SciPy `spearmanr`). */
export function spearman(x: Values, y: Values): number {
  checkPair('spearman', x, y, 2);
  return pearson(averageRanks(x), averageRanks(y));
}

const METRICS: Record<MetricName, (pred: Values, label: Values) => number> = {
  accuracy,
  f1,
  mcc: matthewsCorrelation,
  pearson,
  spearman,
};

/** The metric called `name` (as listed in a GLUE task's `metrics`). */
export function metric(name: MetricName, pred: Values, label: Values): number {
  return METRICS[name](pred, label);
}

/** A metric's 95 % interval over the examples, and how it was found. */
export interface MetricInterval {
  low: number;
  high: number;
  method: 'wilson' | 'bootstrap';
}

/**
 * The 95 % interval of metric `name` over the examples scored: Wilson's for accuracy (a
 * proportion), else the 2.5th and 97.5th percentiles of `resamples` bootstrap resamples of the
 * examples, drawn from a fixed seed so that the same predictions give the same interval.
 */
export function metricInterval95(
  name: MetricName,
  pred: Values,
  label: Values,
  resamples = 1000,
): MetricInterval {
  const n = checkPair(name, pred, label);
  if (name === 'accuracy') {
    let hits = 0;
    for (let i = 0; i < n; i++) if (pred[i] === label[i]) hits++;
    return { ...wilson95(hits, n), method: 'wilson' };
  }
  const rng = new Rng(0x5eed);
  const p = new Float64Array(n);
  const l = new Float64Array(n);
  const values: number[] = [];
  for (let r = 0; r < resamples; r++) {
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rng.uniform() * n);
      p[i] = pred[j]!;
      l[i] = label[j]!;
    }
    const v = METRICS[name](p, l);
    // a resample may leave a correlation undefined (one value repeated)
    if (Number.isFinite(v)) values.push(v);
  }
  values.sort((a, b) => a - b);
  const at = (q: number) => values[Math.min(values.length - 1, Math.floor(q * values.length))] ?? Number.NaN;
  return { low: at(0.025), high: at(0.975), method: 'bootstrap' };
}
