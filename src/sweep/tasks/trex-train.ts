/**
 * A training point of `xbar experiment trex`: a model folder made under the experiment's output
 * folder (`trex.out`), by one of TReX's two trainings:
 *
 *   brief        a variant of the teacher (`trex.variant`: reuse, shared weights or pruned
 *                tokens) trained briefly with distillation on the first `trex.fraction` of the
 *                training split; its metric is the distillation loss on the held-out examples
 *   noise-aware  a trained folder (`trex.from`) fine-tuned with `hw`'s noise in the forward pass
 *
 * The folder is written as `OUT.partial` (resumable there) and renamed to `OUT` once trained, so
 * a folder at `OUT` is always whole: a point run again (its result lost) finds it and does not
 * train again.
 */
import { existsSync, renameSync } from 'node:fs';
import { dirname } from 'node:path';
import { z } from 'zod';
import { loadSpec } from '../../analog/presets.js';
import { trexTrainingSplits } from '../../methods/trex/data.js';
import { noiseAwareFinetune } from '../../methods/trex/finetune.js';
import { trainCandidate } from '../../methods/trex/search.js';
import { copyProcessorFiles, loadModel } from '../../models/index.js';
import type { Variants } from '../../models/variants.js';
import type { Problem } from '../../util/errors.js';
import { ensureDir } from '../../util/files.js';
import type { Point, PointResult, PointSettings, PointTask, TaskContext } from '../types.js';
import { TREX_MAX_LENGTH } from './trex-search.js';

const TRAININGS = ['brief', 'noise-aware'] as const;
const positive = (what: string) =>
  z.number({ error: `use ${what} > 0` }).positive({ error: `use ${what} > 0` });
const nonNegative = (what: string) =>
  z.number({ error: `use ${what} ≥ 0` }).min(0, { error: `use ${what} ≥ 0` });
const whole = (what: string, lo: number) =>
  z
    .number({ error: `use ${what}` })
    .int({ error: `use ${what}` })
    .min(lo, { error: `use ${what}` });

/** The brief training's settings besides the shared seed and batch (the loss weights, the steps). */
const BRIEF_ONLY = ['trex.variant', 'trex.ceWeight', 'trex.klWeight', 'trex.temperature'] as const;

export const trexTrainTask: PointTask = {
  name: 'trex-train',
  description:
    'trains a TReX model folder into trex.out: a variant briefly with distillation, or a folder fine-tuned with hw’s noise',
  settings: {
    'trex.train': z.enum(TRAININGS, { error: `use ${TRAININGS.join(' or ')}` }),
    'trex.out': z.string({ error: 'use a folder to write' }).min(1, { error: 'use a folder to write' }),
    'trex.variant': z.string({ error: 'use the variant as JSON, e.g. {"reuse":{"2":1}}' }).refine(
      (v) => {
        try {
          const j: unknown = JSON.parse(v);
          return typeof j === 'object' && j !== null && !Array.isArray(j);
        } catch {
          return false;
        }
      },
      { error: 'use the variant as JSON, e.g. {"reuse":{"2":1}}' },
    ),
    'trex.from': z.string({ error: 'use a model folder' }).min(1, { error: 'use a model folder' }),
    'trex.fraction': positive('a fraction of the training split').max(1, {
      error: 'use a fraction of the training split in (0, 1]',
    }),
    'trex.heldOut': whole('a whole number ≥ 1 of held-out training examples', 1),
    'trex.epochs': whole('a whole number ≥ 1 of epochs', 1),
    'trex.lr': positive('a learning rate'),
    'trex.ceWeight': nonNegative('a weight of the label cross-entropy'),
    'trex.klWeight': nonNegative('a weight of the KL to the teacher'),
    'trex.temperature': positive('a distillation temperature'),
  },
  requires: [
    'model',
    'data',
    'trex.train',
    'trex.out',
    'trex.fraction',
    'trex.heldOut',
    'trex.epochs',
    'trex.lr',
    'maxLength',
  ],
  check(s: PointSettings, where: string): Problem[] {
    const problems: Problem[] = [];
    if (s['trex.train'] === 'brief') {
      for (const k of BRIEF_ONLY)
        if (s[k] === undefined) problems.push(`${where}: no ${k}; a brief training needs it`);
      if (s['trex.from'] !== undefined) problems.push(`${where}: trex.from is for noise-aware training`);
    } else {
      for (const k of ['trex.from', 'hw'])
        if (s[k] === undefined) problems.push(`${where}: no ${k}; a noise-aware training needs it`);
      for (const k of BRIEF_ONLY)
        if (s[k] !== undefined) problems.push(`${where}: ${k} is for brief training`);
    }
    return problems;
  },
  async run(point: Point, ctx: TaskContext): Promise<Omit<PointResult, 'provenance'>> {
    const s = point.settings;
    const modelDir = String(s['model']);
    const out = String(s['trex.out']);
    const maxLength = Number(s['maxLength'] ?? TREX_MAX_LENGTH);
    const epochs = Number(s['trex.epochs']);
    const batch = Number(s['batch']);
    const { train, heldOut } = trexTrainingSplits(
      await ctx.data(modelDir, String(s['data']), { split: 'train', maxLength }),
      { fraction: Number(s['trex.fraction']), heldOut: Number(s['trex.heldOut']) },
    );
    const labels: Record<string, string> = { dir: out, train: train.name, held_out: heldOut.name };
    const metrics: Record<string, number> = { epochs, examples: train.size, held_out: heldOut.size };
    // trained into OUT.partial, then renamed: a folder at OUT is whole
    const partial = `${out}.partial`;
    const whole = existsSync(out);
    const into = whole ? out : partial;
    ensureDir(dirname(out));
    if (s['trex.train'] === 'brief') {
      const variant = JSON.parse(String(s['trex.variant'])) as Variants;
      // a whole folder is loaded, not trained again: its loss is what the training gave
      const { loss } = await trainCandidate(await ctx.model(modelDir), modelDir, variant, into, {
        train,
        heldOut,
        brief: {
          epochs,
          batch,
          lr: Number(s['trex.lr']),
          seed: Number(s['seed']),
          ceWeight: Number(s['trex.ceWeight']),
          klWeight: Number(s['trex.klWeight']),
          temperature: Number(s['trex.temperature']),
        },
        provider: ctx.provider,
        log: ctx.note,
      });
      metrics['loss'] = loss;
      labels['trained'] = `brief distillation of ${JSON.stringify(variant)}`;
    } else {
      const from = String(s['trex.from']);
      const hw = String(s['hw']);
      if (!whole) {
        // loaded afresh: the training changes the model in place, and a cached one is shared
        await noiseAwareFinetune(loadModel(from), train, loadSpec(hw), {
          epochs,
          lr: Number(s['trex.lr']),
          batch,
          out: partial,
          provider: ctx.provider,
          log: ctx.note,
        });
        copyProcessorFiles(modelDir, partial);
      }
      labels['trained'] = `noise-aware fine-tuning of ${from} on ${hw}`;
    }
    if (!whole) renameSync(partial, out);
    return { id: point.id, metrics, labels };
  },
};
