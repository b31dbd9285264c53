/** Times since programming as people write them: '3600', '10s', '1h', '1d', '1y'. */
import { InputError } from './errors.js';

/** A duration: the text as given (for display) and seconds. */
export interface Duration {
  text: string;
  seconds: number;
}

const SECONDS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 604800, y: 31557600 };

/** Parses a duration; `where` names the flag or field in the error. */
export function parseDuration(v: string, where = '--time'): Duration {
  const m = /^\s*(\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const seconds = Number(m?.[1]) * (SECONDS[m?.[2]?.toLowerCase() || 's'] ?? Number.NaN);
  if (!Number.isFinite(seconds))
    throw new InputError(
      `${where} ${v}: expected a duration: a number with s, m, h, d, w or y, e.g. 1h, 1d, 1y`,
    );
  return { text: v, seconds };
}
