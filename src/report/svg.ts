/**
 * Tiny dependency-free charts as SVG: pie and horizontal bar charts with a title, labels,
 * percentages and a legend, in the Okabe–Ito colour-blind-safe palette; `toPng` renders with
 * resvg and the system fonts.
 */
import { Resvg } from '@resvg/resvg-js';

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
const TITLE_PX = 17;
const TEXT_PX = 13;

export interface Datum {
  label: string;
  value: number;
}

/** A chart body in its own coordinates (0,0)–(width,height). */
export interface Chart {
  width: number;
  height: number;
  body: string;
}

export interface ChartOptions {
  title: string;
  data: readonly Datum[];
  /** Formats a value for the legend, e.g. (v) => `${v.toFixed(1)} µJ`. */
  format?: (v: number) => string;
  /** Fixed colours by label, so several charts agree; others take the palette in order. */
  colors?: Readonly<Record<string, string>>;
  /** At most this many entries; the smallest rest are merged into "other". */
  maxEntries?: number;
}

export const escapeXml = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** One colour per label, in order, from the palette (grey kept for "other"). */
export function colorMap(labels: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  labels.forEach((l, i) => {
    out[l] = PALETTE[i % (PALETTE.length - 1)]!;
  });
  out['other'] = PALETTE[PALETTE.length - 1]!;
  return out;
}

/** Positive entries, largest first, the tail merged into "other". */
function prepare(data: readonly Datum[], maxEntries: number): Datum[] {
  const pos = data.filter((d) => d.value > 0 && Number.isFinite(d.value)).sort((a, b) => b.value - a.value);
  if (pos.length <= maxEntries) return pos;
  const rest = pos.slice(maxEntries - 1).reduce((s, d) => s + d.value, 0);
  return [...pos.slice(0, maxEntries - 1), { label: 'other', value: rest }];
}

function colorsFor(items: readonly Datum[], fixed: Readonly<Record<string, string>> = {}): string[] {
  let next = 0;
  const used = new Set(Object.values(fixed));
  return items.map((d) => {
    const f = fixed[d.label];
    if (f) return f;
    while (used.has(PALETTE[next % PALETTE.length]!) && next < 2 * PALETTE.length) next++;
    return PALETTE[next++ % PALETTE.length]!;
  });
}

/** Black or white text, whichever reads better on `hex`. */
function inkOn(hex: string): string {
  const n = Number.parseInt(hex.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#000' : '#fff';
}

const pct = (v: number, sum: number) => `${((100 * v) / sum).toFixed(1)}%`;
const text = (x: number, y: number, s: string, attrs = '') =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${escapeXml(s)}</text>`;

function legend(
  items: Datum[],
  colors: string[],
  sum: number,
  fmt: (v: number) => string,
  x: number,
  y: number,
) {
  return items
    .map((d, i) => {
      const yy = y + i * 22;
      const label = `${d.label}  ${fmt(d.value)} (${pct(d.value, sum)})`;
      return (
        `<rect x="${x}" y="${yy - 11}" width="14" height="14" fill="${colors[i]}" stroke="#333" stroke-width="0.5"/>` +
        text(x + 20, yy + 1, label, `font-size="${TEXT_PX}"`)
      );
    })
    .join('');
}

/** Legend width for the longest entry (DejaVu Sans averages ~0.6 em per character). */
const legendWidth = (items: Datum[], sum: number, fmt: (v: number) => string) =>
  20 +
  Math.max(0, ...items.map((d) => `${d.label}  ${fmt(d.value)} (${pct(d.value, sum)})`.length)) *
    TEXT_PX *
    0.6;

/** A pie chart: slices clockwise from 12 o'clock, percentages on slices of 6% or more, legend right. */
export function pieChart(o: ChartOptions): Chart {
  const fmt = o.format ?? ((v: number) => v.toPrecision(3));
  const items = prepare(o.data, o.maxEntries ?? 9);
  const sum = items.reduce((s, d) => s + d.value, 0);
  const colors = colorsFor(items, o.colors);
  const r = 110;
  const cx = 20 + r;
  const cy = 40 + r;
  const parts: string[] = [text(10, 24, o.title, `font-size="${TITLE_PX}" font-weight="bold"`)];
  if (sum <= 0) {
    parts.push(text(20, cy, '(nothing to show)', `font-size="${TEXT_PX}"`));
    return { width: 320, height: cy + r + 20, body: parts.join('') };
  }
  let a0 = -Math.PI / 2;
  items.forEach((d, i) => {
    const frac = d.value / sum;
    const a1 = a0 + frac * 2 * Math.PI;
    const fill = colors[i]!;
    if (frac > 0.9999) {
      parts.push(`<circle cx="${cx}" cy="${cy}" r="${r}" fill="${fill}" stroke="#fff" stroke-width="1.5"/>`);
    } else {
      const [x0, y0] = [cx + r * Math.cos(a0), cy + r * Math.sin(a0)];
      const [x1, y1] = [cx + r * Math.cos(a1), cy + r * Math.sin(a1)];
      const large = a1 - a0 > Math.PI ? 1 : 0;
      parts.push(
        `<path d="M${cx},${cy} L${x0.toFixed(2)},${y0.toFixed(2)} A${r},${r} 0 ${large} 1 ${x1.toFixed(2)},${y1.toFixed(2)} Z" ` +
          `fill="${fill}" stroke="#fff" stroke-width="1.5"/>`,
      );
    }
    if (frac >= 0.06) {
      const am = (a0 + a1) / 2;
      const rl = frac > 0.9999 ? 0 : r * 0.64;
      parts.push(
        text(
          cx + rl * Math.cos(am),
          cy + rl * Math.sin(am) + 4,
          pct(d.value, sum),
          `font-size="${TEXT_PX}" font-weight="bold" text-anchor="middle" fill="${inkOn(fill)}"`,
        ),
      );
    }
    a0 = a1;
  });
  const lx = cx + r + 24;
  parts.push(legend(items, colors, sum, fmt, lx, 60));
  const width = Math.ceil(lx + legendWidth(items, sum, fmt) + 10);
  const height = Math.max(cy + r + 16, 60 + items.length * 22);
  return { width, height, body: parts.join('') };
}

/** A horizontal bar chart, largest first, each bar labelled with its value and share. */
export function barChart(o: ChartOptions & { barWidth?: number }): Chart {
  const fmt = o.format ?? ((v: number) => v.toPrecision(3));
  const items = prepare(o.data, o.maxEntries ?? 12);
  const sum = items.reduce((s, d) => s + d.value, 0);
  const colors = colorsFor(items, o.colors);
  const labelW = Math.max(60, ...items.map((d) => d.label.length * TEXT_PX * 0.6)) + 10;
  const barW = o.barWidth ?? 320;
  const max = Math.max(0, ...items.map((d) => d.value));
  const row = 24;
  const parts: string[] = [text(10, 24, o.title, `font-size="${TITLE_PX}" font-weight="bold"`)];
  items.forEach((d, i) => {
    const y = 40 + i * row;
    const w = max > 0 ? (d.value / max) * barW : 0;
    parts.push(
      text(labelW, y + 15, d.label, `font-size="${TEXT_PX}" text-anchor="end"`),
      `<rect x="${labelW + 8}" y="${y + 2}" width="${w.toFixed(1)}" height="${row - 6}" fill="${colors[i]}"/>`,
      text(labelW + 14 + w, y + 15, `${fmt(d.value)} (${pct(d.value, sum)})`, `font-size="${TEXT_PX}"`),
    );
  });
  const valueW =
    Math.max(0, ...items.map((d) => `${fmt(d.value)} (${pct(d.value, sum)})`.length)) * TEXT_PX * 0.6;
  return {
    width: Math.ceil(labelW + 14 + barW + valueW + 10),
    height: 40 + items.length * row + 10,
    body: parts.join(''),
  };
}

/** One SVG document: rows of charts side by side, an optional title above. */
export function svgDocument(
  rows: readonly (readonly Chart[])[],
  o: { title?: string; gap?: number } = {},
): string {
  const gap = o.gap ?? 16;
  let y = o.title ? 40 : gap;
  let width = 0;
  const placed: string[] = [];
  for (const row of rows) {
    let x = gap;
    for (const c of row) {
      placed.push(`<g transform="translate(${x},${y})">${c.body}</g>`);
      x += c.width + gap;
    }
    width = Math.max(width, x);
    y += Math.max(0, ...row.map((c) => c.height)) + gap;
  }
  const head = o.title ? text(gap, 28, o.title, `font-size="${TITLE_PX + 3}" font-weight="bold"`) : '';
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${y}" viewBox="0 0 ${width} ${y}" ` +
    `font-family="${FONT}" fill="#111">` +
    `<rect width="100%" height="100%" fill="#fff"/>${head}${placed.join('')}</svg>\n`
  );
}

/** PNG bytes of an SVG, rendered with the system fonts at `scale`× its size. */
export function toPng(svg: string, o: { scale?: number } = {}): Uint8Array {
  const r = new Resvg(svg, {
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    fitTo: { mode: 'zoom', value: o.scale ?? 2 },
    background: '#ffffff',
  });
  return r.render().asPng();
}

export interface Series {
  label: string;
  /** Points in x order; `err` draws a ±err bar (e.g. one std). */
  points: readonly { x: number; y: number; err?: number }[];
}

/** Plot frame shared by line and histogram charts: axes with a few ticks, legend on the right. */
function frame(
  o: { title: string; xLabel: string; yLabel: string; logX?: boolean },
  xs: readonly number[],
  ys: readonly number[],
  labels: readonly string[],
  colors: readonly string[],
) {
  const w = 420;
  const h = 240;
  const left = 60;
  const top = 40;
  const tx = (v: number) => (o.logX ? Math.log10(Math.max(v, 1e-30)) : v);
  const x0 = Math.min(...xs.map(tx));
  const x1 = Math.max(...xs.map(tx));
  const y0 = Math.min(0, ...ys);
  const y1 = Math.max(...ys);
  const sx = (v: number) => left + ((tx(v) - x0) / (x1 - x0 || 1)) * w;
  const sy = (v: number) => top + h - ((v - y0) / (y1 - y0 || 1)) * h;
  const parts = [
    text(10, 24, o.title, `font-size="${TITLE_PX}" font-weight="bold"`),
    `<path d="M${left} ${top}V${top + h}H${left + w}" stroke="#333" fill="none"/>`,
    text(left + w / 2, top + h + 34, o.xLabel, `font-size="${TEXT_PX}" text-anchor="middle"`),
    text(
      14,
      top + h / 2,
      o.yLabel,
      `font-size="${TEXT_PX}" text-anchor="middle" transform="rotate(-90 14 ${top + h / 2})"`,
    ),
  ];
  for (let i = 0; i <= 4; i++) {
    const yv = y0 + ((y1 - y0) * i) / 4;
    const xv = x0 + ((x1 - x0) * i) / 4;
    parts.push(
      text(left - 6, sy(yv) + 4, yv.toPrecision(3), `font-size="11" text-anchor="end"`),
      text(
        left + (w * i) / 4,
        top + h + 16,
        o.logX ? `1e${xv.toFixed(1)}` : xv.toPrecision(3),
        `font-size="11" text-anchor="middle"`,
      ),
    );
  }
  labels.forEach((l, i) => {
    parts.push(
      `<rect x="${left + w + 16}" y="${top + i * 20}" width="12" height="12" fill="${colors[i]}"/>`,
      text(left + w + 34, top + i * 20 + 11, l, `font-size="${TEXT_PX}"`),
    );
  });
  const legendW = Math.max(0, ...labels.map((l) => l.length * TEXT_PX * 0.6));
  return { parts, sx, sy, width: Math.ceil(left + w + 40 + legendW + 10), height: top + h + 46 };
}

/** Lines through each series' points, with optional error bars; `logX` for times. */
export function lineChart(o: {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  logX?: boolean;
}): Chart {
  const colors = o.series.map((_, i) => PALETTE[i % (PALETTE.length - 1)]!);
  const pts = o.series.flatMap((s) => s.points);
  const f = frame(
    o,
    pts.map((p) => p.x),
    pts.flatMap((p) => [p.y - (p.err ?? 0), p.y + (p.err ?? 0)]),
    o.series.map((s) => s.label),
    colors,
  );
  o.series.forEach((s, i) => {
    const d = s.points
      .map((p, j) => `${j ? 'L' : 'M'}${f.sx(p.x).toFixed(1)} ${f.sy(p.y).toFixed(1)}`)
      .join('');
    f.parts.push(`<path d="${d}" stroke="${colors[i]}" stroke-width="2" fill="none"/>`);
    for (const p of s.points) {
      f.parts.push(
        `<circle cx="${f.sx(p.x).toFixed(1)}" cy="${f.sy(p.y).toFixed(1)}" r="3" fill="${colors[i]}"/>`,
      );
      if (p.err)
        f.parts.push(
          `<path d="M${f.sx(p.x).toFixed(1)} ${f.sy(p.y - p.err).toFixed(1)}V${f.sy(p.y + p.err).toFixed(1)}" stroke="${colors[i]}"/>`,
        );
    }
  });
  return { width: f.width, height: f.height, body: f.parts.join('') };
}

/** Histograms of several samples on shared bins, drawn as outlines so they overlay. */
export function histogram(o: {
  title: string;
  xLabel: string;
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
  const counts = o.series.map((s) => {
    const c = new Array<number>(nb).fill(0);
    for (let i = 0; i < s.values.length; i++) c[Math.min(nb - 1, Math.floor((s.values[i]! - lo) / width))]!++;
    return c.map((v) => v / Math.max(1, s.values.length));
  });
  const colors = o.series.map((_, i) => PALETTE[i % (PALETTE.length - 1)]!);
  const f = frame(
    { ...o, yLabel: 'fraction' },
    [lo, hi],
    counts.flat(),
    o.series.map((s) => s.label),
    colors,
  );
  counts.forEach((c, i) => {
    let d = `M${f.sx(lo).toFixed(1)} ${f.sy(0).toFixed(1)}`;
    c.forEach((v, b) => {
      d += `V${f.sy(v).toFixed(1)}H${f.sx(lo + (b + 1) * width).toFixed(1)}`;
    });
    d += `V${f.sy(0).toFixed(1)}`;
    f.parts.push(`<path d="${d}" stroke="${colors[i]}" stroke-width="1.5" fill="none"/>`);
  });
  return { width: f.width, height: f.height, body: f.parts.join('') };
}

/** At most about `n` round ticks (1, 2 or 5 × 10^k apart) inside [lo, hi]. */
export const ticks = (lo: number, hi: number, n: number): number[] => {
  const step = 10 ** Math.floor(Math.log10((hi - lo) / n || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= n) ?? 10 * step;
  const out: number[] = [];
  for (let v = Math.ceil(lo / nice) * nice; v <= hi + 1e-12; v += nice) out.push(Number(v.toPrecision(12)));
  return out;
};

/**
 * Estimates with intervals by row (a forest plot): per row and series, a dot at the estimate and
 * a whisker over its interval, with a line at zero; rows top to bottom in the order given.
 */
export function intervalChart(o: {
  title: string;
  xLabel: string;
  series: readonly string[];
  rows: readonly { label: string; values: readonly ({ mid: number; lo: number; hi: number } | null)[] }[];
}): Chart {
  const colors = o.series.map((_, i) => PALETTE[i % (PALETTE.length - 1)]!);
  const labelW = Math.max(60, ...o.rows.map((r) => r.label.length * TEXT_PX * 0.6)) + 10;
  const w = 360;
  const top = 44;
  const step = 10;
  const rowH = Math.max(24, o.series.length * step + 10);
  const all = o.rows.flatMap((r) => r.values.flatMap((v) => (v ? [v.lo, v.hi, v.mid] : [])));
  const finite = [0, ...all.filter(Number.isFinite)];
  const [x0, x1] = [Math.min(...finite), Math.max(...finite)];
  const sx = (v: number) => labelW + 8 + ((v - x0) / (x1 - x0 || 1)) * w;
  const bottom = top + o.rows.length * rowH;
  const parts = [
    text(10, 24, o.title, `font-size="${TITLE_PX}" font-weight="bold"`),
    `<path d="M${sx(0).toFixed(1)} ${top}V${bottom}" stroke="#999" stroke-dasharray="4 3"/>`,
    `<path d="M${labelW + 8} ${bottom}H${labelW + 8 + w}" stroke="#333"/>`,
    text(labelW + 8 + w / 2, bottom + 34, o.xLabel, `font-size="${TEXT_PX}" text-anchor="middle"`),
  ];
  for (const v of ticks(x0, x1, 6))
    parts.push(
      `<path d="M${sx(v).toFixed(1)} ${bottom}v4" stroke="#333"/>`,
      text(sx(v), bottom + 16, String(v), `font-size="11" text-anchor="middle"`),
    );
  o.rows.forEach((r, i) => {
    const y = top + i * rowH;
    parts.push(text(labelW, y + rowH / 2 + 4, r.label, `font-size="${TEXT_PX}" text-anchor="end"`));
    r.values.forEach((v, j) => {
      if (!v) return;
      const yy = (y + rowH / 2 + (j - (o.series.length - 1) / 2) * step).toFixed(1);
      if (Number.isFinite(v.lo) && Number.isFinite(v.hi))
        parts.push(
          `<path d="M${sx(v.lo).toFixed(1)} ${yy}H${sx(v.hi).toFixed(1)}" stroke="${colors[j]}" stroke-width="2"/>`,
        );
      parts.push(`<circle cx="${sx(v.mid).toFixed(1)}" cy="${yy}" r="3.5" fill="${colors[j]}"/>`);
    });
  });
  const lx = labelW + 8 + w + 20;
  o.series.forEach((s, j) => {
    parts.push(
      `<rect x="${lx}" y="${top + j * 20}" width="12" height="12" fill="${colors[j]}"/>`,
      text(lx + 18, top + j * 20 + 11, s, `font-size="${TEXT_PX}"`),
    );
  });
  const legendW = Math.max(0, ...o.series.map((s) => s.length * TEXT_PX * 0.6));
  return { width: Math.ceil(lx + 18 + legendW + 10), height: bottom + 46, body: parts.join('') };
}
