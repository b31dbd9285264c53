/**
 * Choosing ClipFormer's (α, β) automatically, beyond the paper (which picks them by hand from
 * {1,2}×{1,0.25} per model and noise level): evaluate a grid on a calibration set (never the
 * test data) under the same hardware, and keep the best by accuracy or by mean attention SNR.
 * Globally (one pair for every layer) or per layer: with the SNR objective the per-layer choice
 * comes from the same runs (block i's SNR depends on block i's transform); with accuracy, one
 * greedy pass over the layers from the global choice.
 */
import { z } from 'zod';
import { analogInstances, type InstanceOptions } from '../analog/instances.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import type { EvalData } from '../eval/data.js';
import { runOn } from '../eval/evaluate.js';
import type { Model } from '../models/index.js';
import type { Provider } from '../runtime/session.js';
import { meanStd } from '../util/math.js';
import { intIn, numIn, parseWith } from '../util/validate.js';
import { type ClipFormerConfig, kvTransformFor, parseClipFormer } from './clipformer.js';
import { measureSnr } from './snr.js';

const SearchConfig = z
  .object({
    alphas: z.array(numIn(1, 1e6)).min(1).default([1, 2, 3]).describe('stage I candidates, each ≥ 1'),
    betas: z
      .array(numIn(0, 1, true))
      .min(1)
      .default([1, 0.5, 0.25])
      .describe('stage II candidates, each in (0, 1]'),
    objective: z
      .enum(['accuracy', 'snr'])
      .default('accuracy')
      .describe('maximise the task metric or the mean attention SNR'),
    perLayer: z.boolean().default(false).describe('one (α, β) per encoder layer instead of one for all'),
    includeOff: z
      .boolean()
      .default(true)
      .describe('also try no transform, so the search can conclude that ClipFormer does not help'),
    instances: intIn(1, 1000).default(2).describe('Monte Carlo instances averaged per candidate'),
    seed: intIn(0, 2 ** 31 - 1)
      .default(1000)
      .describe('base seed of the calibration instances'),
  })
  .strict();
export type SearchConfig = z.output<typeof SearchConfig>;
export const parseSearch = (v: unknown, where = 'clipformer search'): SearchConfig =>
  parseWith(SearchConfig, v, where);

export interface Candidate {
  /** The transform; for `off` (no transform) α = β = 1 only fill the fields. */
  off?: boolean;
  alpha: number;
  beta: number;
  /** Mean metric and mean SNR per block over the calibration instances. */
  metric: number;
  snrDb: number[];
}

export interface SearchResult {
  objective: SearchConfig['objective'];
  /** The chosen config for all layers; null: no transform won. */
  global: ClipFormerConfig | null;
  /** One per encoder layer (null: off there), when searched per layer. */
  perLayer: (ClipFormerConfig | null)[] | null;
  candidates: Candidate[];
  calibration: string;
  seconds: number;
}

const meanOf = (v: readonly number[]) => meanStd(v).mean;

export interface SearchOptions {
  batch?: number;
  provider?: Provider;
  onCandidate?: (c: Candidate) => void;
  /**
   * The instances' options for a candidate transform (one for all layers, one per layer, or
   * none): its K/V transform and the ranges `spec` sets on data for it. Default: the transform alone.
   */
  instanceOptions?: (
    c: ClipFormerConfig | null | readonly (ClipFormerConfig | null)[],
  ) => Promise<InstanceOptions>;
}

/** Runs the grid on `calibration` (data the caller took from outside the test split). */
export async function searchClipFormer(
  model: Model,
  calibration: EvalData,
  spec: ResolvedSpec,
  cfg: SearchConfig,
  o: SearchOptions = {},
): Promise<SearchResult> {
  const t0 = performance.now();
  const run = async (c: ClipFormerConfig | null | (ClipFormerConfig | null)[]) => {
    const metric: number[] = [];
    const snr: number[][] = [];
    const options = o.instanceOptions
      ? await o.instanceOptions(c)
      : c
        ? { kvTransform: kvTransformFor(c) }
        : {};
    const instance = analogInstances(model, spec, options);
    for (let i = 0; i < cfg.instances; i++) {
      // the same instance seeds for every candidate: comparisons are paired
      const r = await measureSnr(model, calibration, await instance(cfg.seed + i), runOn(o));
      metric.push(r.value);
      snr.push(r.blocks.map((b) => b.snrDb));
    }
    const blocks = snr[0]!.length;
    return {
      metric: meanOf(metric),
      snrDb: Array.from({ length: blocks }, (_, b) => meanOf(snr.map((s) => s[b]!))),
    };
  };
  const score = (c: { metric: number; snrDb: number[] }) =>
    cfg.objective === 'accuracy' ? c.metric : meanOf(c.snrDb);

  const candidates: Candidate[] = [];
  if (cfg.includeOff) {
    const c = { off: true, alpha: 1, beta: 1, ...(await run(null)) };
    candidates.push(c);
    o.onCandidate?.(c);
  }
  for (const alpha of cfg.alphas)
    for (const beta of cfg.betas) {
      const c = { alpha, beta, ...(await run(parseClipFormer({ alpha, beta }))) };
      candidates.push(c);
      o.onCandidate?.(c);
    }
  // ties go to the earlier candidate (the grid's order: off, then the mildest transform first)
  const best = candidates.reduce((a, b) => (score(b) > score(a) ? b : a));
  const configOf = (c: Candidate, layers?: number[]): ClipFormerConfig | null =>
    c.off ? null : parseClipFormer({ alpha: c.alpha, beta: c.beta, ...(layers ? { layers } : {}) });
  const global = configOf(best);

  let perLayer: (ClipFormerConfig | null)[] | null = null;
  if (cfg.perLayer) {
    const layers = best.snrDb.length;
    if (cfg.objective === 'snr') {
      perLayer = Array.from({ length: layers }, (_, l) => {
        const b = candidates.reduce((x, y) => (y.snrDb[l]! > x.snrDb[l]! ? y : x));
        return configOf(b, [l]);
      });
    } else {
      // greedy: layer by layer, keep the candidate that maximises accuracy with the others fixed
      let chosen = Array.from({ length: layers }, (_, l) => configOf(best, [l]));
      let current = best.metric;
      const same = (c: Candidate, p: ClipFormerConfig | null) =>
        c.off ? p === null : p !== null && c.alpha === p.alpha && c.beta === p.beta;
      for (let l = 0; l < layers; l++) {
        for (const c of candidates) {
          if (same(c, chosen[l]!)) continue;
          const trial = chosen.map((p, i) => (i === l ? configOf(c, [l]) : p));
          const r = await run(trial);
          if (r.metric > current) {
            current = r.metric;
            chosen = trial;
          }
        }
      }
      perLayer = chosen;
    }
  }
  return {
    objective: cfg.objective,
    global,
    perLayer,
    candidates,
    calibration: calibration.name,
    seconds: (performance.now() - t0) / 1e3,
  };
}
