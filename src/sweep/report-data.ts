/**
 * What reports read from a sweep's rows: which settings vary, the fields an x axis may take,
 * the groups of points that differ only by seed, and the metric of some points with its
 * interval.
 */
import { interval95 } from '../experiments/cells.js';
import { parseDuration } from '../util/duration.js';
import { InputError } from '../util/errors.js';
import type { PointResult, PointSettings, StoredRow, SweepDefinition, SweepReader } from './types.js';

/** The setting that numbers a point's Monte Carlo instance: points that differ only here are one configuration. */
export const SEED_FIELD = 'seed';
/** The metric's keys in `PointResult.metrics`, and its name's key in `labels`. */
export const METRIC = 'metric';
export const METRIC_LOW = 'metric_low';
export const METRIC_HIGH = 'metric_high';
export const METRIC_NAME = 'metric_name';

export type Value = PointSettings[string];

/** What a report reads: the stored sweep and its rows in point order. */
export interface SweepData {
  sweep: SweepDefinition & { schema: number; xbar: string };
  rows: readonly StoredRow[];
}

export async function readSweep(reader: SweepReader): Promise<SweepData> {
  return { sweep: await reader.sweep(), rows: await reader.rows() };
}

export const settingOf = (s: PointSettings, field: string): Value => s[field] ?? null;
const same = (a: Value, b: Value) => JSON.stringify(a) === JSON.stringify(b);

/** The settings' fields in order of first appearance, split into those with one value for every point and those that vary. */
export function settingFields(rows: readonly StoredRow[]): {
  constant: { field: string; value: Value }[];
  varying: string[];
} {
  const fields = [...new Set(rows.flatMap((r) => Object.keys(r.point.settings)))];
  const constant: { field: string; value: Value }[] = [];
  const varying: string[] = [];
  for (const field of fields) {
    const first = settingOf(rows[0]!.point.settings, field);
    if (rows.every((r) => same(settingOf(r.point.settings, field), first)))
      constant.push({ field, value: first });
    else varying.push(field);
  }
  return { constant, varying };
}

/** The setting of drift times, written as durations ('1h', '1d') and placed on an axis by their seconds. */
export const TIME_FIELD = 'time';

/** Where a setting's value sits on an x axis: a number as it is, a time in seconds; undefined for anything else. */
export function axisValue(field: string, v: Value): number | undefined {
  if (typeof v === 'number') return v;
  if (field !== TIME_FIELD || typeof v !== 'string') return undefined;
  try {
    return parseDuration(v, field).seconds;
  } catch {
    return undefined;
  }
}

/**
 * The fields an x axis may take: settings that vary with numbers (or times) for values, a
 * point without the field aside, and not the seed; those with the most distinct values first.
 */
export function numericFields(rows: readonly StoredRow[]): string[] {
  const counts = settingFields(rows)
    .varying.filter((f) => f !== SEED_FIELD)
    .map((field) => {
      const values = rows.map((r) => settingOf(r.point.settings, field)).filter((v) => v !== null);
      const xs = values.map((v) => axisValue(field, v));
      const numeric = xs.length > 0 && xs.every((x) => x !== undefined);
      return { field, numeric, distinct: new Set(xs).size };
    });
  // a stable sort: among fields of as many values, the sweep file's order
  return counts
    .filter((c) => c.numeric)
    .sort((a, b) => b.distinct - a.distinct)
    .map((c) => c.field);
}

/**
 * The field accuracy is plotted against: `requested` where it is a varying numeric setting (else
 * an error naming it and those allowed), by default the one with the most values; undefined
 * where no setting qualifies.
 */
export function chooseX(rows: readonly StoredRow[], requested?: string): string | undefined {
  const allowed = numericFields(rows);
  if (requested === undefined) return allowed[0];
  if (!allowed.includes(requested)) {
    const fields = [...new Set(rows.flatMap((r) => Object.keys(r.point.settings)))];
    const what =
      requested === SEED_FIELD
        ? 'the charts average over seeds'
        : fields.includes(requested)
          ? `${requested} is a setting of this sweep, but not one with numbers or times that vary`
          : `${requested} is not a setting of this sweep (its settings: ${fields.join(', ') || 'none'})`;
    throw new InputError(
      `--x ${requested}: ${what}; ${allowed.length ? `use ${allowed.join(', ')}` : 'this sweep has no setting of numbers or times that varies'}`,
    );
  }
  return requested;
}

/** A group of points that differ only by their seed, in the order of its first point. */
export interface SeedGroup {
  /** The points' settings without the seed. */
  settings: PointSettings;
  rows: StoredRow[];
}

export function seedGroups(rows: readonly StoredRow[]): SeedGroup[] {
  const groups = new Map<string, SeedGroup>();
  for (const r of rows) {
    const settings = Object.fromEntries(Object.entries(r.point.settings).filter(([k]) => k !== SEED_FIELD));
    const key = JSON.stringify(Object.entries(settings).sort(([a], [b]) => (a < b ? -1 : 1)));
    const g = groups.get(key) ?? { settings, rows: [] };
    g.rows.push(r);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** The metric of some points with its 95 % interval, over the `n` points that have a result. */
export interface Estimate {
  value: number;
  low: number;
  high: number;
  n: number;
}

/**
 * The values each metric can take (the project's metrics: src/io/glue.ts, src/eval/metrics.ts);
 * an unknown one is taken as a correlation's.
 */
const METRIC_RANGE: Readonly<Record<string, readonly [number, number]>> = { accuracy: [0, 1], f1: [0, 1] };
const CORRELATION: readonly [number, number] = [-1, 1];

/**
 * Over several finished points, the mean of their metrics with its Student-t interval (the
 * instances' spread), cut to the values the metric can take (the cut interval holds the true
 * mean whenever the whole one does, so it keeps its 95 %); over one point, its own interval
 * (the examples' spread); over none, NaN.
 */
export function estimate(rows: readonly StoredRow[]): Estimate {
  const done = rows.flatMap((r) => (r.result && Number.isFinite(r.result.metrics[METRIC]) ? [r.result] : []));
  if (done.length === 1) {
    const m = done[0]!.metrics;
    return { value: m[METRIC]!, low: m[METRIC_LOW] ?? Number.NaN, high: m[METRIC_HIGH] ?? Number.NaN, n: 1 };
  }
  const { mean, half, n } = interval95(done.map((r) => r.metrics[METRIC]!));
  const [lo, hi] = METRIC_RANGE[nameOf(done)] ?? CORRELATION;
  return { value: n ? mean : Number.NaN, low: Math.max(lo, mean - half), high: Math.min(hi, mean + half), n };
}

/** The metric's name: the one every result names, else 'metric'. */
export const metricName = (rows: readonly StoredRow[]): string =>
  nameOf(rows.flatMap((r) => (r.result ? [r.result] : [])));

function nameOf(results: readonly PointResult[]): string {
  const names = new Set(results.map((r) => r.labels?.[METRIC_NAME] ?? METRIC));
  return names.size === 1 ? [...names][0]! : METRIC;
}

/** The results' other numbers (cost, SNR, examples, …), in order of first appearance. */
export function otherMetrics(rows: readonly StoredRow[]): string[] {
  const keys = rows.flatMap((r) => Object.keys(r.result?.metrics ?? {}));
  return [...new Set(keys)].filter((k) => k !== METRIC && k !== METRIC_LOW && k !== METRIC_HIGH);
}
