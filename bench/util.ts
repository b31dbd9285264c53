/** Timing helpers shared by the benchmarks. */

/** Runs `f` `warmup` times untimed, then `reps` times; returns seconds per run. */
export async function timeIt(f: () => Promise<unknown>, reps: number, warmup = 1): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await f();
  const out: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await f();
    out.push((performance.now() - t) / 1e3);
  }
  return out;
}

export const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

export const fmtRow = (...cells: string[]): string =>
  cells.map((c, i) => c.padEnd([24, 14, 12, 0][i] ?? 0)).join(' ');
