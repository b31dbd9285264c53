/**
 * A scatter chart as SVG (same look as svg.ts): points by series in the Okabe–Ito palette,
 * optional log x axis, a label beside each point, a legend of series.
 */
import { type Chart, escapeXml, PALETTE, ticks } from './svg.js';

export interface ScatterPoint {
  series: string;
  label: string;
  x: number;
  y: number;
}

export interface ScatterOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  points: readonly ScatterPoint[];
  logX?: boolean;
  width?: number;
  height?: number;
}

/** 1, 2, 5 × 10^k inside [lo, hi] (only 1 × 10^k when the range spans many decades). */
function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  const mantissas = Math.log10(hi / lo) > 3 ? [1] : [1, 2, 5];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of mantissas) {
      const v = m * 10 ** k;
      if (v >= lo && v <= hi) out.push(Number(v.toPrecision(6)));
    }
  }
  return out;
}

export function scatterChart(o: ScatterOptions): Chart {
  const width = o.width ?? 720;
  const height = o.height ?? 440;
  const [left, right, top, bottom] = [70, 190, 36, 50];
  const pts = o.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y) && (!o.logX || p.x > 0));
  const fx = (v: number) => (o.logX ? Math.log10(v) : v);
  const xs = pts.map((p) => fx(p.x));
  const ys = pts.map((p) => p.y);
  const pad = (lo: number, hi: number, right = 0.08) => {
    const m = hi - lo || Math.abs(hi) || 1;
    return [lo - 0.08 * m, hi + right * m] as const;
  };
  // room on the right for the labels of the rightmost points
  const [x0, x1] = pad(Math.min(...xs), Math.max(...xs), 0.25);
  const [y0, y1] = pad(Math.min(...ys), Math.max(...ys));
  const px = (v: number) => left + ((fx(v) - x0) / (x1 - x0)) * (width - left - right);
  const py = (v: number) => top + (1 - (v - y0) / (y1 - y0)) * (height - top - bottom);
  const series = [...new Set(pts.map((p) => p.series))];
  const color = (s: string) => PALETTE[series.indexOf(s) % PALETTE.length]!;
  const parts: string[] = [
    `<text x="${left}" y="20" font-size="16" font-weight="bold">${escapeXml(o.title)}</text>`,
    `<rect x="${left}" y="${top}" width="${width - left - right}" height="${height - top - bottom}" fill="none" stroke="#333"/>`,
  ];
  const xt = o.logX ? logTicks(10 ** x0, 10 ** x1) : ticks(x0, x1, 6);
  for (const t of xt) {
    const x = px(t);
    if (x < left || x > width - right) continue;
    parts.push(
      `<line x1="${x}" y1="${height - bottom}" x2="${x}" y2="${height - bottom + 5}" stroke="#333"/>`,
      `<text x="${x}" y="${height - bottom + 18}" font-size="11" text-anchor="middle">${escapeXml(o.logX ? String(t) : t.toPrecision(3))}</text>`,
    );
  }
  for (const t of ticks(y0, y1, 6)) {
    const y = py(t);
    parts.push(
      `<line x1="${left - 5}" y1="${y}" x2="${left}" y2="${y}" stroke="#333"/>`,
      `<text x="${left - 8}" y="${y + 4}" font-size="11" text-anchor="end">${escapeXml(String(t))}</text>`,
    );
  }
  parts.push(
    `<text x="${(left + width - right) / 2}" y="${height - 12}" font-size="13" text-anchor="middle">${escapeXml(o.xLabel)}</text>`,
    `<text x="16" y="${(top + height - bottom) / 2}" font-size="13" text-anchor="middle" transform="rotate(-90 16 ${(top + height - bottom) / 2})">${escapeXml(o.yLabel)}</text>`,
  );
  for (const p of pts) {
    const [x, y] = [px(p.x), py(p.y)];
    parts.push(
      `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="5" fill="${color(p.series)}" stroke="#222" stroke-width="0.6"/>`,
      `<text x="${(x + 7).toFixed(1)}" y="${(y - 6).toFixed(1)}" font-size="10">${escapeXml(p.label)}</text>`,
    );
  }
  series.forEach((s, i) => {
    const y = top + 10 + i * 20;
    parts.push(
      `<circle cx="${width - right + 20}" cy="${y}" r="5" fill="${color(s)}" stroke="#222" stroke-width="0.6"/>`,
      `<text x="${width - right + 30}" y="${y + 4}" font-size="12">${escapeXml(s)}</text>`,
    );
  });
  return { width, height, body: parts.join('') };
}
