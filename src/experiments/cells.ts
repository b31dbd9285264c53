/**
 * An experiment's cells and their statistics: a cell is a list of Monte Carlo instances, each a
 * value with its seed (instance i of a cell uses seed `seed + i`), and the reports compare cells
 * as paired differences over the seeds they share, with Student-t 95 % intervals.
 */
import { meanStd, t975 } from '../util/math.js';

export interface InstanceRecord {
  seed: number;
  value: number;
  /** Anything else the instance measured (e.g. SNR per block). */
  extra?: Record<string, unknown>;
  /** Absent where not recorded. */
  seconds?: number;
}

export interface CellRecord {
  id: string;
  /** The cell's coordinates in the grid, e.g. { model: 'standard', gamma: '3', method: 'none' }. */
  labels: Record<string, string>;
  instances: InstanceRecord[];
  mean: number;
  std: number;
}

/** The differences a − b over the instances two cells share by seed (the same programming and noise streams). */
export function pairedDifferences(a: CellRecord, b: CellRecord): number[] {
  const bySeed = new Map(b.instances.map((i) => [i.seed, i.value]));
  return a.instances.flatMap((i) => (bySeed.has(i.seed) ? [i.value - bySeed.get(i.seed)!] : []));
}

/** Mean, standard error and the half width of its two-sided 95 % interval (Student's t; NaN below 2 values). */
export function interval95(v: readonly number[]): { mean: number; se: number; half: number; n: number } {
  const { mean, std } = meanStd(v);
  const se = v.length > 1 ? std / Math.sqrt(v.length) : Number.NaN;
  return { mean, se, half: se * t975(v.length - 1), n: v.length };
}

/**
 * The paired difference a − b over the instances two cells share by seed, as "mean ± standard
 * error" in points: far tighter than comparing the cells' spreads when the instances, not the
 * methods, make most of the variation.
 */
export function pairedDiff(a: CellRecord | undefined, b: CellRecord | undefined, percent = true): string {
  if (!a || !b) return '—';
  const d = pairedDifferences(a, b);
  if (d.length < 2) return '—';
  const k = percent ? 100 : 1;
  const { mean, se } = interval95(d);
  return `${mean * k >= 0 ? '+' : ''}${(mean * k).toFixed(2)} ± ${(se * k).toFixed(2)}`;
}

/** "61.70 [57.94, 65.46]" in points: a mean and its 95 % interval. */
export function withInterval(v: readonly number[]): string {
  if (!v.length) return '—';
  const { mean, half } = interval95(v);
  return inPoints(mean, mean - half, mean + half);
}

/** "61.70 [57.94, 65.46]": a fraction and its interval's ends in points; the value alone where an end is not finite. */
export function inPoints(value: number, low: number, high: number): string {
  const f = (x: number) => `${x >= 0 ? '' : '−'}${Math.abs(100 * x).toFixed(2)}`;
  if (!Number.isFinite(value)) return '—';
  return Number.isFinite(low) && Number.isFinite(high) ? `${f(value)} [${f(low)}, ${f(high)}]` : f(value);
}

/** `withInterval` with a '+' on a non-negative mean: for differences. */
export const signedInterval = (v: readonly number[]): string => {
  const s = withInterval(v);
  return v.length && interval95(v).mean >= 0 ? `+${s}` : s;
};

/** "74.64 ± 0.31" in percent for fractions, or plain numbers. */
export const pm = (c: { mean: number; std: number } | undefined, percent = true, digits = 2): string =>
  c
    ? `${(c.mean * (percent ? 100 : 1)).toFixed(digits)} ± ${(c.std * (percent ? 100 : 1)).toFixed(digits)}`
    : '—';
