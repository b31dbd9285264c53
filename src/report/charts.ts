/**
 * Charts as Vega-Lite specs: plain JSON objects, one builder per kind of chart, each carrying its
 * own data. Vega lays them out (nice ticks, axes, legends); report/render.ts draws them to SVG and
 * PNG in Node, and a browser can render the same specs. Nothing here imports Node.
 */
import type { TopLevelSpec } from 'vega-lite';

type ConcatSpec = Extract<TopLevelSpec, { vconcat: unknown }>;
/** One chart: a Vega-Lite view without the top-level properties, to stand alone or sit in a figure. */
export type Chart = ConcatSpec['vconcat'][number];

/** Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision deficiency. */
export const PALETTE = [
  '#0072B2', // blue
  '#E69F00', // orange
  '#009E73', // bluish green
  '#CC79A7', // reddish purple
  '#56B4E9', // sky blue
  '#D55E00', // vermillion
  '#F0E442', // yellow
  '#332288', // indigo (Tol's muted scheme), before black for a ninth entry
  '#000000', // black
  '#999999', // grey (also "other")
] as const;

const FONT = 'DejaVu Sans, Arial, Helvetica, sans-serif';
const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const CONFIG = {
  font: FONT,
  range: { category: [...PALETTE] },
  // titles placed by the plot area, not by the axis labels that stick out above it
  title: { fontSize: 15, anchor: 'start' as const, frame: 'group' as const },
  axis: { labelFontSize: 11, titleFontSize: 13, titleFontWeight: 'normal' as const },
  // fewer, rounder ticks than one per 40 px: labels every 10 rather than 10 apart with half hidden
  axisQuantitative: { tickCount: 6 },
  legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 400 },
  view: { continuousWidth: 360, continuousHeight: 220 },
};

/** A figure: rows of charts side by side under an optional title, each chart with its own scales and legend. */
export function figure(rows: readonly (readonly Chart[])[], o: { title?: string } = {}): TopLevelSpec {
  const top = { $schema: SCHEMA, config: CONFIG };
  const only = rows.length === 1 && rows[0]!.length === 1 && !o.title ? rows[0]![0] : undefined;
  if (only) return { ...top, ...only } as TopLevelSpec;
  const independent = { scale: { color: 'independent' as const }, legend: { color: 'independent' as const } };
  return {
    ...top,
    ...(o.title ? { title: { text: o.title, fontSize: 18 } } : {}),
    spacing: 30,
    resolve: independent,
    vconcat: rows.map((row) => ({ hconcat: [...row], spacing: 30, resolve: independent })),
  };
}

/** Colours in a series' order (the palette's last entry, grey, kept for "other"). */
const seriesColor = (labels: readonly string[]) => ({
  domain: [...labels],
  range: labels.map((_, i) => PALETTE[i % (PALETTE.length - 1)]!),
});

export interface Series {
  label: string;
  /** Points in x order; `err` draws a ±err bar (e.g. one std), `lo` and `hi` a bar between them (an interval). */
  points: readonly { x: number; y: number; err?: number; lo?: number; hi?: number }[];
}

/** Lines through each series' points with ±err bars; `logX` for times. */
export function lineChart(o: {
  title: string;
  xTitle: string;
  yTitle: string;
  series: readonly Series[];
  logX?: boolean;
  /** Names of the x values, e.g. { 3600: '1 h' }: ticks there, so labelled (default: the x values as numbers). */
  xNames?: Readonly<Record<number, string>>;
}): Chart {
  const values = o.series.flatMap((s) =>
    s.points.map((p) => ({
      series: s.label,
      x: p.x,
      y: p.y,
      ...(p.lo !== undefined && p.hi !== undefined
        ? { lo: p.lo, hi: p.hi }
        : p.err === undefined
          ? {}
          : { lo: p.y - p.err, hi: p.y + p.err }),
    })),
  );
  const x = {
    field: 'x',
    type: 'quantitative' as const,
    title: o.xTitle,
    scale: o.logX ? { type: 'log' as const } : { zero: false },
    // the few x values measured, not a scale's ticks between them
    axis: {
      values: [...new Set(values.map((v) => v.x))],
      ...(o.xNames ? { labelExpr: `${JSON.stringify(o.xNames)}[datum.value]` } : { format: '~g' }),
    },
  };
  const y = { type: 'quantitative' as const, title: o.yTitle, scale: { zero: false } };
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    scale: seriesColor(o.series.map((s) => s.label)),
  };
  return {
    title: o.title,
    data: { values },
    layer: [
      { mark: { type: 'line', point: true }, encoding: { x, y: { ...y, field: 'y' }, color } },
      {
        transform: [{ filter: 'isValid(datum.lo)' }],
        mark: { type: 'errorbar', ticks: true },
        encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color },
      },
    ],
  };
}

/**
 * Histograms of several samples on `bins` shared bins, as fractions of each sample, overlaid
 * translucent so both show.
 */
export function histogram(o: {
  title: string;
  xTitle: string;
  series: readonly { label: string; values: ArrayLike<number> }[];
  bins?: number;
}): Chart {
  const nb = o.bins ?? 40;
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of o.series)
    for (let i = 0; i < s.values.length; i++) {
      lo = Math.min(lo, s.values[i]!);
      hi = Math.max(hi, s.values[i]!);
    }
  const width = (hi - lo || 1) / nb;
  const values = o.series.flatMap((s) => {
    const counts = new Array<number>(nb).fill(0);
    for (let i = 0; i < s.values.length; i++)
      counts[Math.min(nb - 1, Math.floor((s.values[i]! - lo) / width))]!++;
    return counts.map((c, b) => ({
      series: s.label,
      x0: lo + b * width,
      x1: lo + (b + 1) * width,
      fraction: c / Math.max(1, s.values.length),
    }));
  });
  return {
    title: o.title,
    data: { values },
    mark: { type: 'rect', opacity: 0.5 },
    encoding: {
      x: { field: 'x0', type: 'quantitative', title: o.xTitle, scale: { zero: false } },
      x2: { field: 'x1' },
      y: { field: 'fraction', type: 'quantitative', title: 'fraction of values', stack: null },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        scale: seriesColor(o.series.map((s) => s.label)),
      },
    },
  };
}

/**
 * Estimates with intervals by row (a forest plot): per row and series a dot at the estimate and a
 * whisker over its interval, a dashed line at zero; rows top to bottom in the order given.
 */
export function intervalChart(o: {
  title: string;
  xTitle: string;
  series: readonly string[];
  rows: readonly { label: string; values: readonly ({ mid: number; lo: number; hi: number } | null)[] }[];
}): Chart {
  const values = o.rows.flatMap((r) =>
    r.values.flatMap((v, j) =>
      v && Number.isFinite(v.mid)
        ? [
            {
              row: r.label,
              series: o.series[j]!,
              mid: v.mid,
              // JSON has no NaN: an interval that could not be computed is left out
              ...(Number.isFinite(v.lo) && Number.isFinite(v.hi) ? { lo: v.lo, hi: v.hi } : {}),
            },
          ]
        : [],
    ),
  );
  const y = {
    field: 'row',
    type: 'nominal' as const,
    title: null,
    sort: o.rows.map((r) => r.label),
    axis: { labelLimit: 300 },
  };
  const yOffset = { field: 'series', type: 'nominal' as const, sort: [...o.series] };
  const color = { field: 'series', type: 'nominal' as const, title: null, scale: seriesColor(o.series) };
  const x = { type: 'quantitative' as const, title: o.xTitle };
  return {
    title: o.title,
    width: 360,
    height: { step: 14, for: 'offset' as const },
    data: { values },
    layer: [
      {
        data: { values: [{ zero: 0 }] },
        mark: { type: 'rule', strokeDash: [4, 3], color: '#999' },
        encoding: { x: { ...x, field: 'zero' } },
      },
      {
        transform: [{ filter: 'isValid(datum.lo)' }],
        mark: { type: 'rule', strokeWidth: 2 },
        encoding: { y, yOffset, x: { ...x, field: 'lo' }, x2: { field: 'hi' }, color },
      },
      {
        mark: { type: 'point', filled: true, size: 50, opacity: 1 },
        encoding: { y, yOffset, x: { ...x, field: 'mid' }, color },
      },
    ],
  };
}

export interface ScatterPoint {
  series: string;
  label: string;
  x: number;
  y: number;
}

/** The places a label may take beside its point: upper or lower, right or left. */
const LABEL_PLACES = {
  ne: { align: 'left', dx: 7, dy: -8 },
  se: { align: 'left', dx: 7, dy: 8 },
  nw: { align: 'right', dx: -7, dy: -8 },
  sw: { align: 'right', dx: -7, dy: 8 },
} as const;
type LabelPlace = keyof typeof LABEL_PLACES;
const LABEL_FONT = 10;

/** Pixels of `v` along an axis of `size` px whose data `extent` maps to [pad, size − pad] (Vega's padding without nice). */
function pixel(
  v: number,
  extent: readonly [number, number],
  size: number,
  pad: number,
  log: boolean,
): number {
  const f = (t: number) => (log ? Math.log(t) : t);
  const span = f(extent[1]) - f(extent[0]);
  return span > 0 ? pad + ((f(v) - f(extent[0])) / span) * (size - 2 * pad) : size / 2;
}

/** Overlap area of two boxes [x0, y0, x1, y1]. */
const overlap = (a: readonly number[], b: readonly number[]) =>
  Math.max(0, Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!)) *
  Math.max(0, Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!));

/**
 * A place for each label (in the order of `at`, pixel positions of the points in a plot `height`
 * px high), chosen greedily
 * from the top of the plot down: the first place whose box (its size estimated from the text)
 * covers no label placed before, no point and nothing outside the plot's left, top or bottom
 * (the legend sits below, so labels may reach past the right edge); else the least covered one.
 */
export function placeLabels(
  at: readonly { x: number; y: number; label: string }[],
  height: number,
): LabelPlace[] {
  const h = LABEL_FONT * 1.2;
  const boxOf = (p: (typeof at)[number], k: LabelPlace) => {
    const { align, dx, dy } = LABEL_PLACES[k];
    const w = 0.62 * LABEL_FONT * p.label.length;
    const x0 = align === 'left' ? p.x + dx : p.x + dx - w;
    return [x0, p.y + dy - h / 2, x0 + w, p.y + dy + h / 2];
  };
  const marks = at.map((p) => [p.x - 5, p.y - 5, p.x + 5, p.y + 5]);
  const outside = [
    [-1e6, -1e6, 0, 1e6],
    [-1e6, -1e6, 1e6, 0],
    [-1e6, height, 1e6, 1e6],
  ];
  const placed: number[][] = [];
  const out: LabelPlace[] = new Array(at.length);
  const order = at.map((_, i) => i).sort((a, b) => at[a]!.y - at[b]!.y || at[a]!.x - at[b]!.x);
  for (const i of order) {
    const cost = (k: LabelPlace) => {
      const box = boxOf(at[i]!, k);
      return [...placed, ...marks, ...outside].reduce((s, b) => s + overlap(box, b), 0);
    };
    const places = Object.keys(LABEL_PLACES) as LabelPlace[];
    const best = places.find((k) => cost(k) === 0) ?? places.reduce((a, b) => (cost(b) < cost(a) ? b : a));
    out[i] = best;
    placed.push(boxOf(at[i]!, best));
  }
  return out;
}

/**
 * Points by series, each labelled beside it where the label covers no other label or point
 * (`placeLabels`, on the scales' exact extents); `logX` drops points at x ≤ 0.
 */
export function scatterChart(o: {
  title: string;
  xTitle: string;
  yTitle: string;
  points: readonly ScatterPoint[];
  logX?: boolean;
  /** Fixed colours by series; others take the palette in order. */
  colors?: Readonly<Record<string, string>>;
}): Chart {
  const finite = o.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!o.logX || p.x > 0));
  // room around the points for them and their labels; no nice domains, so the labels' pixels are known
  const padding = 24;
  const [width, height] = [520, 360];
  const extent = (v: number[]) => [Math.min(...v), Math.max(...v)] as const;
  const xs = extent(finite.map((p) => p.x));
  const ys = extent(finite.map((p) => p.y));
  const places = placeLabels(
    finite.map((p) => ({
      x: pixel(p.x, xs, width, padding, !!o.logX),
      y: height - pixel(p.y, ys, height, padding, false),
      label: p.label,
    })),
    height,
  );
  const values = finite.map((p, i) => ({ ...p, place: places[i]! }));
  const palette = seriesColor([...new Set(values.map((p) => p.series))]);
  const encoding = {
    x: {
      field: 'x',
      type: 'quantitative' as const,
      title: o.xTitle,
      scale: o.logX ? { type: 'log' as const, nice: false, padding } : { zero: false, nice: false, padding },
      // counts (e.g. encoders) get whole-number ticks
      ...(values.every((p) => Number.isInteger(p.x)) ? { axis: { tickMinStep: 1, format: 'd' } } : {}),
    },
    y: {
      field: 'y',
      type: 'quantitative' as const,
      title: o.yTitle,
      scale: { zero: false, nice: false, padding },
    },
  };
  return {
    title: o.title,
    width,
    height,
    data: { values },
    layer: [
      {
        mark: { type: 'point', filled: true, size: 70, opacity: 1, stroke: '#222', strokeWidth: 0.6 },
        encoding: {
          ...encoding,
          color: {
            field: 'series',
            type: 'nominal',
            title: null,
            scale: {
              domain: palette.domain,
              range: palette.domain.map((s, i) => o.colors?.[s] ?? palette.range[i]!),
            },
            // below the plot: the labels of the rightmost points reach beyond it on the right
            legend: { orient: 'bottom' },
          },
        },
      },
      // a text layer per place the labels take
      ...(Object.keys(LABEL_PLACES) as LabelPlace[])
        .filter((k) => places.includes(k))
        .map((k) => ({
          transform: [{ filter: { field: 'place', equal: k } }],
          mark: {
            type: 'text' as const,
            baseline: 'middle' as const,
            fontSize: LABEL_FONT,
            ...LABEL_PLACES[k],
          },
          encoding: { ...encoding, text: { field: 'label' } },
        })),
    ],
  };
}

export interface Datum {
  label: string;
  value: number;
}

export interface ShareOptions {
  title: string;
  data: readonly Datum[];
  /** Formats a value for the labels, e.g. (v) => `${v.toFixed(1)} µJ`. */
  format?: (v: number) => string;
  /** Fixed colours by label, so several charts agree; others take the palette in order. */
  colors?: Readonly<Record<string, string>>;
  /** At most this many entries; the smallest rest are merged into "other". */
  maxEntries?: number;
}

/** One colour per label, in order, from the palette (grey kept for "other"). */
export function colorMap(labels: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  labels.forEach((l, i) => {
    out[l] = PALETTE[i % (PALETTE.length - 1)]!;
  });
  out['other'] = PALETTE[PALETTE.length - 1]!;
  return out;
}

/** Positive entries largest first, the tail merged into "other", each with its share, text and colour. */
function shares(o: ShareOptions, maxEntries: number) {
  const fmt = o.format ?? ((v: number) => v.toPrecision(3));
  const pos = o.data.filter((d) => d.value > 0 && Number.isFinite(d.value)).sort((a, b) => b.value - a.value);
  const items =
    pos.length <= maxEntries
      ? pos
      : [
          ...pos.slice(0, maxEntries - 1),
          { label: 'other', value: pos.slice(maxEntries - 1).reduce((s, d) => s + d.value, 0) },
        ];
  const sum = items.reduce((s, d) => s + d.value, 0);
  const fixed = o.colors ?? {};
  const used = new Set(Object.values(fixed));
  const free = PALETTE.filter((c) => !used.has(c));
  let next = 0;
  return items.map((d, rank) => {
    const share = `${((100 * d.value) / sum).toFixed(1)}%`;
    const color = fixed[d.label] ?? free[next++ % free.length] ?? PALETTE[rank % PALETTE.length]!;
    return { ...d, rank, fraction: d.value / sum, text: `${fmt(d.value)} (${share})`, share, color };
  });
}

/** Black or white text, whichever reads better on `hex`. */
function inkOn(hex: string): string {
  const n = Number.parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#000' : '#fff';
}

/** A pie chart: slices clockwise from 12 o'clock, largest first, shares on slices of 6% or more, a legend with values. */
export function pieChart(o: ShareOptions): Chart {
  const items = shares(o, o.maxEntries ?? 9);
  if (!items.length)
    return { title: o.title, data: { values: [{}] }, mark: { type: 'text', text: '(nothing to show)' } };
  const values = items.map((d) => ({ ...d, legend: `${d.label}  ${d.text}`, ink: inkOn(d.color) }));
  const theta = { field: 'value', type: 'quantitative' as const, stack: true };
  const order = { field: 'rank', type: 'quantitative' as const };
  return {
    title: o.title,
    width: 220,
    height: 220,
    data: { values },
    layer: [
      {
        mark: { type: 'arc', stroke: '#fff', strokeWidth: 1.5 },
        encoding: {
          theta,
          order,
          color: {
            field: 'legend',
            type: 'nominal',
            title: null,
            sort: values.map((d) => d.legend),
            scale: { domain: values.map((d) => d.legend), range: values.map((d) => d.color) },
          },
        },
      },
      {
        transform: [{ filter: 'datum.fraction >= 0.06' }],
        mark: { type: 'text', radius: 70, fontWeight: 'bold', fontSize: 12 },
        encoding: {
          theta,
          order,
          text: { field: 'share' },
          fill: { field: 'ink', type: 'nominal', scale: null },
        },
      },
    ],
  };
}

/** A horizontal bar chart, largest first, each bar labelled with its value and share. */
export function barChart(o: ShareOptions & { xTitle: string }): Chart {
  const values = shares(o, o.maxEntries ?? 12);
  const y = { field: 'label', type: 'nominal' as const, title: null, sort: values.map((d) => d.label) };
  const x = { field: 'value', type: 'quantitative' as const, title: o.xTitle };
  return {
    title: o.title,
    width: 300,
    height: { step: 22 },
    data: { values },
    layer: [
      {
        mark: 'bar',
        encoding: {
          y,
          x,
          color: {
            field: 'label',
            type: 'nominal',
            legend: null,
            scale: { domain: values.map((d) => d.label), range: values.map((d) => d.color) },
          },
        },
      },
      {
        mark: { type: 'text', align: 'left', dx: 4, fontSize: 11 },
        encoding: { y, x, text: { field: 'text' } },
      },
    ],
  };
}
