/**
 * A sweep's report: one row per point (the settings that vary, the metric with its 95 %
 * interval, cost, seconds) and one row per group of points that differ only by their seed (the
 * metric's mean over those instances with its Student-t interval), as Markdown for people and
 * CSV for other programs; with `writeReport`, the charts of report-charts.ts beside them.
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { inPoints } from '../experiments/cells.js';
import { writeFigure } from '../report/render.js';
import { writeFileAtomic } from '../util/files.js';
import { csvTable, markdownTable } from '../util/table.js';
import { metricChart, paretoChart } from './report-charts.js';
import {
  chooseX,
  estimate,
  METRIC,
  METRIC_HIGH,
  METRIC_LOW,
  METRIC_NAME,
  metricName,
  otherMetrics,
  SEED_FIELD,
  type SweepData,
  seedGroups,
  settingFields,
  settingOf,
  type Value,
} from './report-data.js';
import type { PointSettings, StoredRow } from './types.js';

/** A number for people: whole numbers as they are, others to 4 significant digits. */
export function formatNumber(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '—';
  if (Number.isInteger(x) && Math.abs(x) < 1e15) return String(x);
  return String(Number(x.toPrecision(4)));
}

const shown = (v: Value): string => (v === null ? '—' : String(v));
/** CSV cells: the value as JavaScript writes it (all its digits), empty where there is none. */
const raw = (x: Value | undefined): string =>
  x === undefined || x === null || (typeof x === 'number' && !Number.isFinite(x)) ? '' : String(x);
const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((s, x) => s + x, 0) / xs.length : Number.NaN);

/** A table as Markdown (formatted cells, only the settings that vary) and as CSV (raw values, every setting). */
export interface Table {
  markdown: { header: string[]; rows: string[][] };
  csv: { header: string[]; rows: string[][] };
}

export const renderMarkdown = (t: Table): string => markdownTable(t.markdown.header, t.markdown.rows);
export const renderCsv = (t: Table): string => csvTable(t.csv.header, t.csv.rows);

/** A column: its cell in Markdown and in CSV, each absent where the column is not in that table. */
interface Column<R> {
  md?: [header: string, cell: (r: R) => string];
  csv?: [header: string, cell: (r: R) => string];
}

function tableOf<R>(columns: readonly Column<R>[], rows: readonly R[]): Table {
  const render = (cells: [string, (r: R) => string][]) => ({
    header: cells.map(([h]) => h),
    rows: rows.map((r) => cells.map(([, f]) => f(r))),
  });
  return {
    markdown: render(columns.flatMap((c) => (c.md ? [c.md] : []))),
    csv: render(columns.flatMap((c) => (c.csv ? [c.csv] : []))),
  };
}

/**
 * Settings as columns, in the order the sweep names them: in Markdown those that vary (the
 * constant ones are said once above the table), in CSV all of them, so that a CSV row stands alone.
 */
function settingColumns<R>(
  rows: readonly StoredRow[],
  settings: (r: R) => PointSettings,
  without: readonly string[] = [],
): Column<R>[] {
  const { varying } = settingFields(rows);
  const fields = [...new Set(rows.flatMap((r) => Object.keys(r.point.settings)))];
  return fields
    .filter((f) => !without.includes(f))
    .map((f) => ({
      ...(varying.includes(f) ? { md: [f, (r: R) => shown(settingOf(settings(r), f))] } : {}),
      csv: [f, (r: R) => raw(settingOf(settings(r), f))],
    }));
}

/** Results' numbers on the metric's scale (fractions), shown in points as the metric is. */
const IN_POINTS = new Set(['ideal']);

/**
 * The results' other numbers as columns, their units (the label of the same key) in the
 * Markdown header; a breakdown (`snr_db.encoder.0` beside `snr_db`) in CSV only.
 */
function metricColumns<R>(
  rows: readonly StoredRow[],
  value: (r: R, key: string) => number | undefined,
): Column<R>[] {
  const keys = otherMetrics(rows);
  const unit = (k: string) =>
    rows.find((r) => r.result?.labels?.[k] && k in r.result.metrics)?.result?.labels?.[k];
  return keys.map((k) => {
    const breakdown = keys.some((parent) => k.startsWith(`${parent}.`));
    const u = unit(k);
    const md = (r: R) => {
      const v = value(r, k);
      return IN_POINTS.has(k) ? inPoints(v ?? Number.NaN, Number.NaN, Number.NaN) : formatNumber(v);
    };
    return {
      ...(breakdown ? {} : { md: [u ? `${k} (${u})` : k, md] as [string, (r: R) => string] }),
      csv: [k, (r: R) => raw(value(r, k))],
    };
  });
}

/** One row per point: its varying settings, the metric with its interval, the other metrics, seconds, failed attempts. */
export function pointsTable(rows: readonly StoredRow[]): Table {
  const name = metricName(rows);
  // a sweep over tasks of several metrics names each point's
  const names = new Set(rows.flatMap((r) => (r.result ? [r.result.labels?.[METRIC_NAME] ?? ''] : [])));
  const m = (r: StoredRow, k: string) => r.result?.metrics[k];
  const label = (r: StoredRow) => r.result?.labels?.[METRIC_NAME];
  const failures: [string, (r: StoredRow) => string] = ['failures', (r) => String(r.failures)];
  const columns: Column<StoredRow>[] = [
    { md: ['#', (r) => String(r.point.index)], csv: ['index', (r) => String(r.point.index)] },
    { csv: ['id', (r) => r.point.id] },
    ...settingColumns<StoredRow>(rows, (r) => r.point.settings),
    names.size > 1
      ? { md: [METRIC_NAME, (r) => label(r) ?? '—'], csv: [METRIC_NAME, (r) => raw(label(r))] }
      : {},
    {
      md: [
        `${name} [95 % CI]`,
        (r) =>
          inPoints(
            m(r, METRIC) ?? Number.NaN,
            m(r, METRIC_LOW) ?? Number.NaN,
            m(r, METRIC_HIGH) ?? Number.NaN,
          ),
      ],
      csv: [METRIC, (r) => raw(m(r, METRIC))],
    },
    { csv: [METRIC_LOW, (r) => raw(m(r, METRIC_LOW))] },
    { csv: [METRIC_HIGH, (r) => raw(m(r, METRIC_HIGH))] },
    ...metricColumns<StoredRow>(rows, m),
    {
      md: ['seconds', (r) => (r.result ? r.result.provenance.seconds.toFixed(1) : '—')],
      csv: ['seconds', (r) => raw(r.result?.provenance.seconds)],
    },
    // in Markdown only where a point failed
    rows.some((r) => r.failures > 0) ? { md: failures, csv: failures } : { csv: failures },
    ...(['host', 'worker', 'started', 'xbar'] as const).map(
      (k): Column<StoredRow> => ({ csv: [k, (r) => raw(r.result?.provenance[k])] }),
    ),
  ];
  return tableOf(columns, rows);
}

/**
 * One row per group of points that differ only by seed: the metric's mean over the group's
 * finished instances with its Student-t 95 % interval, n, the other metrics' means and the mean
 * seconds. Undefined where no two points differ only by seed.
 */
export function seedsTable(rows: readonly StoredRow[]): Table | undefined {
  const groups = seedGroups(rows);
  if (groups.length === rows.length) return undefined;
  const name = metricName(rows);
  const stats = groups.map((g) => ({ g, e: estimate(g.rows) }));
  type S = (typeof stats)[number];
  const avg = (s: S, k: string) =>
    mean(
      s.g.rows.flatMap((r) =>
        r.result && Number.isFinite(r.result.metrics[k]) ? [r.result.metrics[k]!] : [],
      ),
    );
  const seconds = (s: S) => mean(s.g.rows.flatMap((r) => (r.result ? [r.result.provenance.seconds] : [])));
  const columns: Column<S>[] = [
    ...settingColumns<S>(rows, (s) => s.g.settings, [SEED_FIELD]),
    {
      md: [`${name} [95 % CI]`, (s) => inPoints(s.e.value, s.e.low, s.e.high)],
      csv: [`${METRIC}_mean`, (s) => raw(s.e.value)],
    },
    { csv: [METRIC_LOW, (s) => raw(s.e.low)] },
    { csv: [METRIC_HIGH, (s) => raw(s.e.high)] },
    { md: ['n', (s) => String(s.e.n)], csv: ['n', (s) => String(s.e.n)] },
    ...metricColumns<S>(rows, avg),
    { md: ['seconds', (s) => formatNumber(seconds(s))], csv: ['seconds', (s) => raw(seconds(s))] },
  ];
  return tableOf(columns, stats);
}

/** "12 points: 10 done, 1 failed (3 attempts), 1 to do." */
export function progressLine(rows: readonly StoredRow[]): string {
  const done = rows.filter((r) => r.result).length;
  const failed = rows.filter((r) => !r.result && r.failures > 0);
  const attempts = failed.reduce((s, r) => s + r.failures, 0);
  const todo = rows.length - done - failed.length;
  const parts = [
    `${done} done`,
    ...(failed.length ? [`${failed.length} failed (${attempts} attempt${attempts === 1 ? '' : 's'})`] : []),
    ...(todo ? [`${todo} to do`] : []),
  ];
  return `${rows.length} point${rows.length === 1 ? '' : 's'}: ${parts.join(', ')}.`;
}

/** The report in Markdown: the sweep, its settings in common, the tables, and the figures where given. */
export function markdownReport(
  data: SweepData,
  figures: readonly { title: string; file: string }[] = [],
): string {
  const { sweep, rows } = data;
  const out = [
    `# ${sweep.name}`,
    '',
    `${progressLine(rows)} Store schema ${sweep.schema}, written by xbar ${sweep.xbar}.`,
  ];
  if (!rows.length) return `${out.join('\n')}\n`;
  const { constant } = settingFields(rows);
  if (constant.length)
    out.push('', `Every point: ${constant.map((c) => `${c.field} = ${shown(c.value)}`).join(', ')}.`);
  out.push('', '## Points', '', renderMarkdown(pointsTable(rows)));
  const seeds = seedsTable(rows);
  if (seeds)
    out.push(
      '',
      '## Over seeds',
      '',
      'Points that differ only by seed: the mean over their instances with its Student-t 95 % interval (one instance: its own interval).',
      '',
      renderMarkdown(seeds),
    );
  if (figures.length) out.push('', '## Figures', '', ...figures.map((f) => `![${f.title}](${f.file})`));
  return `${out.join('\n')}\n`;
}

/** A query's answer as a Markdown table or CSV (objects as JSON, null as nothing). */
export function queryTable(answer: { columns: string[]; rows: unknown[][] }, format: 'md' | 'csv'): string {
  const cell = (v: unknown) =>
    v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const rows = answer.rows.map((r) => r.map(cell));
  return format === 'csv' ? csvTable(answer.columns, rows) : `${markdownTable(answer.columns, rows)}\n`;
}

/** The charts of a report by file name: the metric against `x` (where a field qualifies) and the Pareto front (where there is EDAP). */
export function reportCharts(
  rows: readonly StoredRow[],
  x?: string,
): { name: string; title: string; spec: TopLevelSpec }[] {
  const field = chooseX(rows, x);
  const pareto = paretoChart(rows);
  const name = metricName(rows);
  return [
    ...(field
      ? [
          {
            name: `${METRIC}-vs-${field.replace(/[^\w.-]+/g, '_')}`,
            title: `${name} against ${field}`,
            spec: metricChart(rows, field),
          },
        ]
      : []),
    ...(pareto ? [{ name: 'pareto', title: `${name} against EDAP`, spec: pareto }] : []),
  ];
}

/**
 * Writes the report into `out`: report.md (tables and figures), points.csv, seeds.csv (where
 * seeds vary), and each chart as .vl.json, .svg and .png; → the files written.
 */
export async function writeReport(data: SweepData, out: string, o: { x?: string } = {}): Promise<string[]> {
  const charts = data.rows.length ? reportCharts(data.rows, o.x) : [];
  const files: string[] = [];
  for (const c of charts) files.push(...(await writeFigure(out, c.name, c.spec)));
  const write = (name: string, text: string) => {
    writeFileAtomic(join(out, name), text);
    files.push(name);
  };
  write(
    'report.md',
    markdownReport(
      data,
      charts.map((c) => ({ title: c.title, file: `${c.name}.svg` })),
    ),
  );
  if (data.rows.length) write('points.csv', renderCsv(pointsTable(data.rows)));
  const seeds = data.rows.length ? seedsTable(data.rows) : undefined;
  if (seeds) write('seeds.csv', renderCsv(seeds));
  return files.map((f) => join(out, f));
}
