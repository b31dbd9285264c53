// placeholder until the shared util/duration.ts is on main
const SECONDS: Record<string, number> = { s: 1, m: 60, min: 60, h: 3600, d: 86400, w: 604800, y: 31557600 };
export function parseDuration(v: string, _where = '--time'): { text: string; seconds: number } {
  const m = /^\s*(\d+(?:\.\d+)?(?:e[-+]?\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const seconds = Number(m?.[1]) * (SECONDS[m?.[2]?.toLowerCase() || 's'] ?? Number.NaN);
  if (!Number.isFinite(seconds)) throw new Error(v);
  return { text: v, seconds };
}
