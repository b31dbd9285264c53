/** Small sweeps' stored rows built by hand, for reports: points over time, method and seed, with known metrics. */
import type { Point, PointResult, PointSettings, StoredRow, SweepReader } from '../../src/sweep/types.js';

/** A point of `settings` (its id need only be unique here). */
export const pointOf = (index: number, settings: PointSettings): Point => ({
  id: `p${index}-${JSON.stringify(settings).length}`,
  index,
  settings,
});

/** A result with the metric and an interval of ±`half`, and the other metrics given. */
export function resultOf(
  point: Point,
  metric: number,
  o: { half?: number; metrics?: Record<string, number>; seconds?: number; name?: string } = {},
): PointResult {
  const half = o.half ?? 0.02;
  return {
    id: point.id,
    metrics: { metric, metric_low: metric - half, metric_high: metric + half, examples: 200, ...o.metrics },
    labels: { metric_name: o.name ?? 'accuracy' },
    provenance: {
      host: 'h',
      worker: 'local-1',
      started: '2026-12-07T00:00:00.000Z',
      seconds: o.seconds ?? 1.5,
      xbar: '0.1.0',
    },
  };
}

/**
 * time × method × seed (3 × 2 × 3 = 18 points, seed fastest), model constant: the metric is
 * 0.7 − 0.05·log10(time) for 'none' and 0.02 higher for 'pto', plus 0.1·(seed − 1), so the
 * three seeds of a configuration are m − 0.1, m and m + 0.1. EDAP depends on the method only.
 */
export function driftSweep(): StoredRow[] {
  const rows: StoredRow[] = [];
  for (const time of [1, 3600, 86400])
    for (const method of ['none', 'pto'])
      for (const seed of [0, 1, 2]) {
        const point = pointOf(rows.length, { model: 'vit', time, method, seed });
        const metric = 0.7 - 0.05 * Math.log10(time) + (method === 'pto' ? 0.02 : 0) + 0.1 * (seed - 1);
        const edap = method === 'pto' ? 2 : 1;
        rows.push({
          point,
          result: resultOf(point, metric, { metrics: { edap, energy_mJ: edap / 2 } }),
          failures: 0,
        });
      }
  return rows;
}

/** A reader over rows held in memory (reports need nothing else). */
export function memoryReader(rows: StoredRow[], o: { name?: string; schema?: number } = {}): SweepReader {
  return {
    sweep: async () => ({
      name: o.name ?? 'drift',
      source: '',
      points: rows.map((r) => r.point),
      schema: o.schema ?? 1,
      xbar: '0.1.0',
    }),
    rows: async () => rows,
    close: async () => {},
  };
}
