/** The data a TReX run uses: a training fraction, held-out training examples, evaluation examples. */
import { type EvalData, openData, parseDataSpec, sliceData } from '../../eval/data.js';
import type { Model } from '../../models/index.js';
import { InputError } from '../../util/errors.js';

export interface TrexDataOptions {
  /** Fraction of the training split for the brief training (TReX: 0.2). */
  fraction: number;
  /** Training examples held out (from the end of the training split) to compare losses on. */
  heldOut: number;
  /** Evaluation examples (test split for images, dev for GLUE); default all. */
  evalLimit?: number;
  maxLength?: number;
}

export interface TrexData {
  train: EvalData;
  heldOut: EvalData;
  eval: EvalData;
}

/** Opens `spec` (KIND:PATH) for `model`; the training fraction and the held-out slice never overlap. */
export function openTrexData(model: Model, modelDir: string, spec: string, o: TrexDataOptions): TrexData {
  const ds = parseDataSpec(spec);
  const common = { modelDir, ...(o.maxLength ? { maxLength: o.maxLength } : {}) };
  return {
    ...trexTrainingSplits(openData(ds, model, { ...common, split: 'train' }), o),
    eval: openData(ds, model, { ...common, ...(o.evalLimit ? { limit: o.evalLimit } : {}) }),
  };
}

/**
 * The brief training's examples (the first `fraction` of the training split) and the held-out
 * ones (its last `heldOut`, at most half of it): the two never overlap.
 */
export function trexTrainingSplits(
  all: EvalData,
  o: Pick<TrexDataOptions, 'fraction' | 'heldOut'>,
): Pick<TrexData, 'train' | 'heldOut'> {
  if (!(o.fraction > 0 && o.fraction <= 1))
    throw new InputError(`--fraction ${o.fraction}: use a number in (0, 1]`);
  const heldOut = Math.min(o.heldOut, Math.floor(all.size / 2));
  const n = Math.min(Math.floor(o.fraction * all.size), all.size - heldOut);
  if (n < 1) throw new InputError(`--fraction ${o.fraction} of ${all.size} training examples is empty`);
  return { train: sliceData(all, 0, n), heldOut: sliceData(all, all.size - heldOut, all.size) };
}
