/**
 * Charts of a sweep as Vega-Lite specs: the metric against a setting with its intervals, a line
 * per combination of the other settings that vary; and the Pareto front of the metric against
 * EDAP. Points that differ only by seed are one mark (their mean with its Student-t interval).
 */
import type { TopLevelSpec } from 'vega-lite';
import { figure, lineChart, PALETTE, type Series, scatterChart } from '../report/charts.js';
import {
  axisValue,
  estimate,
  metricName,
  otherMetrics,
  SEED_FIELD,
  type SeedGroup,
  seedGroups,
  settingFields,
  settingOf,
} from './report-data.js';
import type { StoredRow } from './types.js';

/** "method=pto, preset=pcm-lammie": a group's values of some fields. */
const labelOf = (g: SeedGroup, fields: readonly string[]) =>
  fields.map((f) => `${f}=${settingOf(g.settings, f) ?? '—'}`).join(', ');

/** Times and other positive fields spanning two decades or more are drawn on a log axis. */
const wantsLog = (xs: readonly number[]) =>
  xs.length > 0 && Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) >= 100;

/** The metric (in points) against setting `x`, one line per combination of the other varying settings, with 95 % intervals. */
export function metricChart(rows: readonly StoredRow[], x: string): TopLevelSpec {
  const name = metricName(rows);
  const others = settingFields(rows).varying.filter((f) => f !== x && f !== SEED_FIELD);
  const series = new Map<string, Series['points'][number][]>();
  // times as written ('1h') name their seconds on the axis
  const names: Record<number, string> = {};
  for (const g of seedGroups(rows)) {
    const value = settingOf(g.settings, x);
    const at = axisValue(x, value);
    const e = estimate(g.rows);
    if (at === undefined || !Number.isFinite(e.value)) continue;
    if (typeof value === 'string') names[at] = value;
    const label = labelOf(g, others) || name;
    const bar =
      Number.isFinite(e.low) && Number.isFinite(e.high) ? { lo: 100 * e.low, hi: 100 * e.high } : {};
    series.set(label, [...(series.get(label) ?? []), { x: at, y: 100 * e.value, ...bar }]);
  }
  const all = [...series.values()].flat();
  return figure([
    [
      lineChart({
        title: `${name} against ${x}`,
        xTitle: x,
        yTitle: `${name} (%, 95 % interval)`,
        series: [...series].map(([label, points]) => ({ label, points: points.sort((a, b) => a.x - b.x) })),
        logX: wantsLog(all.map((p) => p.x)),
        ...(Object.keys(names).length ? { xNames: names } : {}),
      }),
    ],
  ]);
}

/** The result key of EDAP (energy × delay × area), if the results have one. */
export const edapKey = (rows: readonly StoredRow[]): string | undefined =>
  otherMetrics(rows).find((k) => /edap/i.test(k));

/**
 * The members of the Pareto front of higher `metric` and lower `cost`, in order of cost: the
 * items no other item beats on one without losing on the other (items alike are both kept).
 */
export function paretoFront<T>(items: readonly T[], metric: (t: T) => number, cost: (t: T) => number): T[] {
  const sorted = [...items].sort((a, b) => cost(a) - cost(b) || metric(b) - metric(a));
  const front: T[] = [];
  for (const t of sorted) {
    const last = front.at(-1);
    // cheapest first: an item is on the front if it beats every cheaper one, or ties the last member exactly
    if (!last || metric(t) > metric(last) || (metric(t) === metric(last) && cost(t) === cost(last)))
      front.push(t);
  }
  return front;
}

/** One mark of the Pareto chart: a group of points differing only by seed. */
export interface ParetoItem {
  label: string;
  metric: number;
  edap: number;
}

/** The groups (points differing only by seed, their mean metric and EDAP) with both numbers. */
export function paretoItems(rows: readonly StoredRow[], key: string): ParetoItem[] {
  const others = settingFields(rows).varying.filter((f) => f !== SEED_FIELD);
  return seedGroups(rows).flatMap((g) => {
    const edaps = g.rows.flatMap((r) =>
      r.result && Number.isFinite(r.result.metrics[key]) ? [r.result.metrics[key]!] : [],
    );
    const metric = estimate(g.rows).value;
    const edap = edaps.reduce((s, v) => s + v, 0) / edaps.length;
    return Number.isFinite(metric) && Number.isFinite(edap)
      ? [{ label: labelOf(g, others), metric, edap }]
      : [];
  });
}

const FRONT = 'Pareto front';
const DOMINATED = 'dominated';

/** The metric against EDAP, the Pareto front's members labelled and joined by a step line; undefined without EDAP. */
export function paretoChart(rows: readonly StoredRow[]): TopLevelSpec | undefined {
  const key = edapKey(rows);
  if (!key) return undefined;
  const items = paretoItems(rows, key);
  if (!items.length) return undefined;
  const front = new Set(
    paretoFront(
      items,
      (i) => i.metric,
      (i) => i.edap,
    ),
  );
  const name = metricName(rows);
  const logX = wantsLog(items.map((i) => i.edap));
  // the results name its unit under its own key
  const unit = rows.find((r) => r.result?.labels?.[key])?.result?.labels?.[key];
  const chart = scatterChart({
    title: `${name} against EDAP`,
    xTitle: `${key === 'edap' ? 'EDAP' : key}${unit ? ` (${unit}${logX ? ', log scale' : ''})` : logX ? ' (log scale)' : ''}`,
    yTitle: `${name} (%)`,
    logX,
    points: items.map((i) => ({
      series: front.has(i) ? FRONT : DOMINATED,
      label: front.has(i) ? i.label : '',
      x: i.edap,
      y: 100 * i.metric,
    })),
    colors: { [FRONT]: PALETTE[0], [DOMINATED]: PALETTE[PALETTE.length - 1] },
  }) as Extract<ReturnType<typeof scatterChart>, { layer: unknown }>;
  // the front as the best metric reached at each EDAP: a step up at each member
  const line = {
    data: { values: [...front].map((i) => ({ x: i.edap, y: 100 * i.metric })) },
    mark: { type: 'line' as const, interpolate: 'step-after' as const, color: PALETTE[0], strokeWidth: 1.5 },
    encoding: {
      x: { field: 'x', type: 'quantitative' as const },
      y: { field: 'y', type: 'quantitative' as const },
    },
  };
  return figure([[{ ...chart, layer: [line, ...chart.layer] }]]);
}
