/**
 * A point of `xbar experiment trex`'s first stage: Algorithm 1 of TReX for one target delay on
 * one hardware (the cost model only, no weights trained): the smallest N_reuse whose delay meets
 * the target and the uniform reuse patterns of that N_reuse, which the next stage trains.
 */
import { z } from 'zod';
import { loadSpec } from '../../analog/presets.js';
import { uniformPatterns } from '../../methods/trex/patterns.js';
import { reuseCountFor } from '../../methods/trex/search.js';
import type { Model } from '../../models/index.js';
import type { Point, PointResult, PointTask, TaskContext } from '../types.js';

/** The pattern a search hands to the training stage (stored as JSON in the point's labels). */
export interface SearchedPattern {
  label: string;
  kind: string;
  encoders: number[];
  reuse: Record<number, number>;
}

/** The tokens the cost model assumes: the token limit for text, none for images (their patches). */
export const trexSeqLen = (model: Model, maxLength: number): number | undefined =>
  model.input().kind === 'text' ? maxLength : undefined;

/** The token limit of a point that names none (as the sweep's points and the CLI default it). */
export const TREX_MAX_LENGTH = 128;

export const trexSearchTask: PointTask = {
  name: 'trex-search',
  description: 'Algorithm 1 of TReX: the reuse count for a target delay on hw, and its uniform patterns',
  settings: {
    'trex.target': z.number({ error: 'use a delay in ms > 0' }).positive({ error: 'use a delay in ms > 0' }),
  },
  requires: ['model', 'hw', 'trex.target'],
  async run(point: Point, ctx: TaskContext): Promise<Omit<PointResult, 'provenance'>> {
    const s = point.settings;
    const model = await ctx.model(String(s['model']));
    const seqLen = trexSeqLen(model, Number(s['maxLength'] ?? TREX_MAX_LENGTH));
    const hw = loadSpec(String(s['hw']));
    const target = Number(s['trex.target']);
    const choice = reuseCountFor({
      model,
      hw,
      targetDelayMs: target,
      ...(seqLen === undefined ? {} : { seqLen }),
    });
    const patterns: SearchedPattern[] = choice.nReuse
      ? uniformPatterns(model.config.layers, choice.nReuse).map((p) => ({
          label: p.label,
          kind: p.kind,
          encoders: p.encoders,
          reuse: p.reuse,
        }))
      : [];
    return {
      id: point.id,
      metrics: {
        target_ms: target,
        n_reuse: choice.nReuse,
        delay_ms: choice.delayMs,
        patterns: patterns.length,
      },
      labels: {
        hardware: hw.spec.name,
        patterns: JSON.stringify(patterns),
        tried: choice.tried.map((t) => `${t.nReuse}: ${t.delayMs.toPrecision(4)} ms`).join(', '),
      },
    };
  },
};
