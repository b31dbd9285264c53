/**
 * Step 4 of the TReX search: fine-tune the winning pattern with the target hardware's noise
 * injected. The noise-aware training loop is built on branch `hwa`; until it is merged this
 * is the one place to connect it, and the search runs with `--no-finetune`.
 */
import type { HardwareSpec } from '../../analog/spec.js';
import type { EvalData } from '../../eval/data.js';
import type { Model } from '../../models/index.js';

export interface FinetuneOptions {
  epochs: number;
  lr: number;
  batch: number;
  /** Checkpoint folder. */
  out: string;
  log?: (line: string) => void;
}

export class FinetuneUnavailable extends Error {
  constructor() {
    super(
      'noise-aware fine-tuning is not available in this build yet (it comes with the noise-aware training of branch hwa); run with --no-finetune',
    );
    this.name = 'FinetuneUnavailable';
  }
}

/** Fine-tunes `model` in place with `spec`'s noise, checkpointing into `o.out`. */
export async function noiseAwareFinetune(
  _model: Model,
  _data: EvalData,
  _spec: HardwareSpec,
  _o: FinetuneOptions,
): Promise<void> {
  throw new FinetuneUnavailable();
}

/** Whether `noiseAwareFinetune` works in this build (callers default `--no-finetune` otherwise). */
export const FINETUNE_AVAILABLE = false;
