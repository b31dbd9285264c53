/**
 * The `clipformer-search` task: one automatic choice of ClipFormer's (α, β) (methods/
 * clipformer-search.ts) for one model and hardware, on the examples [search.first, search.first +
 * limit) of the data: the held-out calibration part that an experiment never evaluates. Every
 * candidate's instances are prepared as a sweep point with that (α, β) prepares them (ranges set
 * on data calibrated on the training split for the K/V it writes), and drawn from the point's
 * seed onwards, the same seeds for every candidate. One (α, β) for all layers; no transform is a
 * candidate too.
 *
 * Metrics: `off` (1 where no transform won), the chosen `alpha` and `beta` (absent then), the
 * calibration examples, and each candidate's mean metric and mean attention SNR over blocks
 * (`metric[α,β]`, `snr_db[α,β]`, `metric[off]`, …).
 */
import { z } from 'zod';
import { loadSpec } from '../../analog/presets.js';
import { openData, parseDataSpec, type Split, subset } from '../../eval/data.js';
import { ClipFormerConfig } from '../../methods/clipformer.js';
import { parseSearch, searchClipFormer } from '../../methods/clipformer-search.js';
import { prepareInstances } from '../../methods/prepare.js';
import { InputError, type Problem } from '../../util/errors.js';
import { intIn } from '../../util/validate.js';
import { hardwareSetsOf, settingText as str } from '../settings.js';
import type { PointTask } from '../types.js';

export const CLIPFORMER_SEARCH = 'clipformer-search';

/** A comma-separated list of numbers, each one ClipFormer's `field` takes. */
const listOf = (field: 'alpha' | 'beta', what: string) =>
  z
    // a single candidate may be written as a number
    .union([z.string(), z.number()], { error: `use ${what}` })
    .transform(String)
    .refine(
      (v) =>
        v
          .split(',')
          .every(
            (x) => x.trim() !== '' && ClipFormerConfig.shape[field].unwrap().safeParse(Number(x)).success,
          ),
      { error: `use ${what}` },
    );

const numbers = (v: string): number[] => v.split(',').map((x) => Number(x.trim()));

const SETTINGS = {
  'search.first': intIn(0, Number.MAX_SAFE_INTEGER),
  'search.instances': intIn(1, 1000),
  'search.objective': z.enum(['accuracy', 'snr'], { error: 'use accuracy or snr' }),
  'search.alphas': listOf('alpha', 'α candidates, comma-separated, each ≥ 1, e.g. 1,2,3'),
  'search.betas': listOf('beta', 'β candidates, comma-separated, each in (0, 1], e.g. 1,0.25'),
};

/** A candidate's name in the metrics: `off` or `α,β`. */
export const candidateName = (c: { off?: boolean; alpha: number; beta: number }): string =>
  c.off ? 'off' : `${c.alpha},${c.beta}`;

export const clipformerSearch: PointTask = {
  name: CLIPFORMER_SEARCH,
  description:
    "ClipFormer's (α, β) chosen on held-out examples [search.first, search.first + limit) by accuracy or attention SNR",
  settings: SETTINGS,
  requires: ['model', 'data', 'hw', 'limit', ...Object.keys(SETTINGS)],
  check(s, where) {
    const problems: Problem[] = [];
    // the search tries every transform itself; a point's own method or SNR flag would mean nothing
    if (s['method'] !== 'none')
      problems.push(
        `${where}: method ${s['method']}: a search point tries the transforms itself; leave method out`,
      );
    if (s['snr'] !== undefined)
      problems.push(`${where}: snr: a search point measures the SNR of every candidate; leave snr out`);
    return problems;
  },
  async run(point, ctx) {
    const s = point.settings;
    const where = `point ${point.index}`;
    const dir = str(s, 'model')!;
    const dataSpec = str(s, 'data')!;
    const hwName = str(s, 'hw')!;
    const split = str(s, 'split') as Split | undefined;
    const maxLength = typeof s['maxLength'] === 'number' ? s['maxLength'] : 128;
    const first = s['search.first'] as number;
    const count = s['limit'] as number;
    const net = await ctx.model(dir);
    const all = await ctx.data(dir, dataSpec, { maxLength, ...(split ? { split } : {}) });
    if (first + count > all.size)
      throw new InputError(where, {
        field: 'search.first',
        value: first,
        allowed: `use 0..${all.size - count}: ${all.name} has ${all.size} examples and the search takes ${count}`,
      });
    const part = subset(
      all,
      Array.from({ length: count }, (_, i) => first + i),
      `${all.name} calibration part`,
    );
    const sets = hardwareSetsOf(s);
    const hw = loadSpec(hwName, sets, net);
    if (!hw.attention)
      throw new InputError(
        `${where}: hw ${hwName}`,
        'attention is digital; ClipFormer needs K/V on crossbars',
      );
    const calibration = str(s, 'calibration');
    // each candidate's ranges as a sweep point with that (α, β) prepares them, kept for the
    // worker's next search of the same model and hardware
    const prepared = (c: ClipFormerConfig | null) =>
      ctx.cached(
        JSON.stringify([CLIPFORMER_SEARCH, dir, hwName, sets, c, calibration ?? dataSpec, maxLength]),
        async () => {
          const notes: string[] = [];
          const options = await prepareInstances(net, dir, hw, {
            calibration: () =>
              openData(parseDataSpec(calibration ?? dataSpec), net, {
                modelDir: dir,
                maxLength,
                split: 'train',
              }),
            ...(c ? { clipformer: c } : {}),
            clipformerWhere: `${where}: clipformer`,
            note: (line) => {
              notes.push(line);
              ctx.note(line);
            },
          });
          return { options, notes };
        },
      );
    const notes = new Set<string>();
    const result = await searchClipFormer(
      net,
      part,
      hw,
      parseSearch(
        {
          alphas: numbers(String(s['search.alphas'])),
          betas: numbers(String(s['search.betas'])),
          instances: s['search.instances'],
          objective: s['search.objective'],
          seed: s['seed'],
        },
        where,
      ),
      {
        batch: s['batch'] as number,
        provider: ctx.provider,
        onCandidate: () => ctx.check(),
        instanceOptions: async (c) => {
          if (Array.isArray(c)) throw new Error(`${where}: a per-layer search is not one this task runs`);
          const p = await prepared(c as ClipFormerConfig | null);
          for (const line of p.notes) notes.add(line);
          return p.options;
        },
      },
    );
    const metrics: Record<string, number> = { examples: part.size, off: result.global ? 0 : 1 };
    if (result.global) Object.assign(metrics, { alpha: result.global.alpha, beta: result.global.beta });
    const mean = (v: readonly number[]) => v.reduce((a, b) => a + b, 0) / v.length;
    for (const c of result.candidates) {
      metrics[`metric[${candidateName(c)}]`] = c.metric;
      metrics[`snr_db[${candidateName(c)}]`] = mean(c.snrDb);
    }
    // JSON has no Infinity or NaN (a noiseless block's SNR): those are left out
    for (const [k, v] of Object.entries(metrics)) if (!Number.isFinite(v)) delete metrics[k];
    const labels: Record<string, string> = {
      data: part.name,
      objective: result.objective,
      chosen: result.global ? candidateName(result.global) : 'off',
    };
    if (notes.size) labels['calibration'] = [...notes].join('; ');
    return { id: point.id, metrics, labels };
  },
};
