/**
 * A point function for the queue's tests before real points: metrics computed from the settings
 * (the same on any machine), after a short sleep so that a point can be caught mid-run.
 * Settings: `x` and `seed` (numbers), `ms` (sleep, default 20), `fail` (always throws).
 */
import { createHash } from 'node:crypto';
import type { Point, RunPoint, SweepDefinition } from '../../src/sweep/types.js';

export const syntheticPoint: RunPoint = async (point, o) => {
  const s = point.settings;
  await new Promise((resolve, reject) => {
    const t = setTimeout(resolve, typeof s['ms'] === 'number' ? s['ms'] : 20);
    o?.signal?.addEventListener('abort', () => {
      clearTimeout(t);
      reject(o.signal!.reason);
    });
  });
  if (s['fail']) throw new Error(`point ${point.index} fails on purpose`);
  const h = createHash('sha256').update(point.id).digest();
  const noise = h.readUInt32LE(0) / 2 ** 32;
  const metric = 0.5 + 0.4 * Math.tanh(Number(s['x'] ?? 0)) + 0.01 * noise;
  return {
    id: point.id,
    metrics: { metric, metric_low: metric - 0.02, metric_high: metric + 0.02, examples: 100 },
    labels: { metric_name: 'accuracy' },
  };
};

const idOf = (settings: Point['settings']): string =>
  createHash('sha256')
    .update(
      JSON.stringify(Object.fromEntries(Object.entries(settings).sort(([a], [b]) => a.localeCompare(b)))),
    )
    .digest('hex')
    .slice(0, 16);

/** A sweep of `n` synthetic points (x from 0, seeds 0..seeds-1), `extra` settings on each. */
export function syntheticSweep(name: string, n: number, extra: Point['settings'] = {}): SweepDefinition {
  const points: Point[] = [];
  for (let i = 0; i < n; i++) {
    const settings = { x: i / 10, seed: i % 3, ...extra };
    points.push({ id: idOf(settings), index: i, settings });
  }
  return { name, source: `synthetic ${n}`, points };
}
