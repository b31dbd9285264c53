/**
 * TReX reuse patterns (Fig. 5): which N_reuse of L encoders drop their attention. Encoder 0
 * always computes attention. Each reuse encoder takes the attention output of the encoder
 * before it (TReX: "the previous encoder"); when that one reuses too, its attention output is
 * its transformation block's output, so a continuous run chains its TBs.
 * - strided (SL ≥ 2): s, s+SL, s+2·SL, …
 * - continuous: s, s+1, …, s+N−1
 * - pyramid (SL ≥ 2, 2 ≤ N_cont < N): runs of N_cont consecutive encoders (the last run may be
 *   shorter), consecutive runs SL−1 computing encoders apart, i.e. run starts N_cont+SL−1 apart.
 *   With N_cont = 1 it would be strided, with N_cont ≥ N continuous.
 * Start positions s ≥ 1 vary over every place the pattern fits.
 */
export type PatternKind = 'strided' | 'continuous' | 'pyramid';

export interface ReusePattern {
  kind: PatternKind;
  /** Kind, parameters and encoders, unique among all patterns of a stack: 'strided SL=2 {1,3}' */
  label: string;
  /** Reuse encoders, ascending. */
  encoders: number[];
  /** Reuse encoder → the encoder whose attention output it takes (the previous one). */
  reuse: Record<number, number>;
  stride?: number;
  runLength?: number;
  start: number;
}

const make = (
  kind: PatternKind,
  encoders: number[],
  start: number,
  extra: { stride?: number; runLength?: number } = {},
): ReusePattern => ({
  kind,
  label: `${kind}${extra.stride ? ` SL=${extra.stride}` : ''}${extra.runLength ? ` Ncont=${extra.runLength}` : ''} {${encoders.join(',')}}`,
  encoders,
  reuse: Object.fromEntries(encoders.map((e) => [e, e - 1])),
  start,
  ...extra,
});

/** Strided patterns of `n` reuse encoders among `layers`, every stride ≥ 2 and start that fits. */
export function stridedPatterns(layers: number, n: number): ReusePattern[] {
  const out: ReusePattern[] = [];
  if (n < 2) return out; // one encoder has no stride: it is the continuous pattern of length 1
  for (let sl = 2; 1 + (n - 1) * sl <= layers - 1; sl++) {
    for (let s = 1; s + (n - 1) * sl <= layers - 1; s++) {
      out.push(
        make(
          'strided',
          Array.from({ length: n }, (_, i) => s + i * sl),
          s,
          { stride: sl },
        ),
      );
    }
  }
  return out;
}

/** Continuous runs of `n` reuse encoders, every start that fits. */
export function continuousPatterns(layers: number, n: number): ReusePattern[] {
  if (n < 1) return [];
  return Array.from({ length: Math.max(0, layers - n) }, (_, k) =>
    make(
      'continuous',
      Array.from({ length: n }, (_, i) => 1 + k + i),
      1 + k,
    ),
  );
}

/** The encoders of a pyramid pattern: runs of `run`, run starts `run + sl − 1` apart. */
function pyramidEncoders(start: number, n: number, run: number, sl: number): number[] {
  const out: number[] = [];
  for (let r = 0; out.length < n; r++) {
    for (let i = 0; i < run && out.length < n; i++) out.push(start + r * (run + sl - 1) + i);
  }
  return out;
}

/** Pyramid patterns of `n` reuse encoders: every run length 2..n−1, stride ≥ 2 and start that fits. */
export function pyramidPatterns(layers: number, n: number): ReusePattern[] {
  const out: ReusePattern[] = [];
  for (let run = 2; run < n; run++) {
    for (let sl = 2; ; sl++) {
      if (pyramidEncoders(1, n, run, sl).at(-1)! > layers - 1) break;
      for (let s = 1; ; s++) {
        const enc = pyramidEncoders(s, n, run, sl);
        if (enc.at(-1)! > layers - 1) break;
        out.push(make('pyramid', enc, s, { stride: sl, runLength: run }));
      }
    }
  }
  return out;
}

/** Every uniform pattern of `n` reuse encoders among `layers` (they all cost the same). */
export function uniformPatterns(layers: number, n: number): ReusePattern[] {
  if (!Number.isInteger(n) || n < 0 || n > layers - 1) {
    throw new RangeError(`N_reuse ${n} is not allowed for ${layers} encoders, use 0..${layers - 1}`);
  }
  if (n === 0) return [];
  return [...stridedPatterns(layers, n), ...continuousPatterns(layers, n), ...pyramidPatterns(layers, n)];
}
