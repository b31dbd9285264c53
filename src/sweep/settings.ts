/**
 * Reading a point's settings: the helpers every kind of point uses (the measurement, point.ts,
 * and the tasks), in a module of their own so that tasks need not import file.ts, which imports
 * the task list.
 */
import { parseDuration } from '../util/duration.js';
import type { PointSettings } from './types.js';

/** A setting as text, or undefined where it is absent (or null). */
export const settingText = (s: PointSettings, k: string): string | undefined =>
  s[k] === undefined || s[k] === null ? undefined : String(s[k]);

/** A numeric setting, or `otherwise` where it is absent. */
export function settingNumber(s: PointSettings, k: string): number | undefined;
export function settingNumber(s: PointSettings, k: string, otherwise: number): number;
export function settingNumber(s: PointSettings, k: string, otherwise?: number): number | undefined {
  return typeof s[k] === 'number' ? s[k] : otherwise;
}

/**
 * The `--set` assignments of a point's `set.*` settings as `loadSpec` takes them, with its `time`
 * as `timeS` unless `withTime` is false (a task that sets the time itself).
 */
export function hardwareSetsOf(s: PointSettings, withTime = true): string[] {
  const sets = Object.entries(s)
    .filter(([k]) => k.startsWith('set.'))
    .map(([k, v]) => `${k.slice(4)}=${typeof v === 'string' ? JSON.stringify(v) : v}`);
  if (withTime && typeof s['time'] === 'string')
    sets.push(`timeS=${parseDuration(s['time'], 'time').seconds}`);
  return sets;
}
