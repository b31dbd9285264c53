/**
 * TReX Algorithm 1: the smallest number of reuse encoders whose simulated delay meets the
 * user's target. Only delay is constrained; encoders are identical, so the delay depends on
 * N_reuse alone, not on which encoders reuse.
 *
 * The loop as printed in the paper increments N_reuse and re-simulates while the delay
 * exceeds the target, but increments once more after the check that succeeds, returning one
 * reuse encoder more than needed; this returns the smallest N_reuse that meets the target.
 */
import { InputError } from '../../util/errors.js';
export interface ReuseCountChoice {
  /** The smallest N_reuse whose delay is ≤ the target. */
  nReuse: number;
  delayMs: number;
  /** Delay of every N_reuse tried, 0..nReuse. */
  tried: { nReuse: number; delayMs: number }[];
}

/** Raises N_reuse from 0 until `delayMs(N)` ≤ `targetMs`; throws when even N = layers − 1 misses. */
export function chooseReuseCount(
  delayMs: (nReuse: number) => number,
  layers: number,
  targetMs: number,
): ReuseCountChoice {
  if (!(targetMs > 0)) throw new InputError(`--target-delay ${targetMs}: use a delay in ms > 0`);
  const tried: ReuseCountChoice['tried'] = [];
  for (let n = 0; n <= layers - 1; n++) {
    const d = delayMs(n);
    tried.push({ nReuse: n, delayMs: d });
    if (d <= targetMs) return { nReuse: n, delayMs: d, tried };
  }
  const best = tried.at(-1)!;
  throw new InputError(
    `--target-delay ${targetMs} ms cannot be met: with ${best.nReuse} of ${layers} encoders reusing attention ` +
      `(the most possible) the delay is ${best.delayMs.toPrecision(4)} ms; use a target ≥ that`,
  );
}
