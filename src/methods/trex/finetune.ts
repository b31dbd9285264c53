/**
 * Step 4 of the TReX search: fine-tune the winning pattern with the target hardware's noise in
 * the forward pass (src/train/noise-aware.ts), through the ordinary training loop.
 */
import type { ResolvedSpec } from '../../analog/resolve.js';
import type { EvalData } from '../../eval/data.js';
import type { Model } from '../../models/index.js';
import type { Provider } from '../../runtime/session.js';
import { train } from '../../train/loop.js';
import { NoiseAwareTraining } from '../../train/noise-aware.js';

export interface FinetuneOptions {
  epochs: number;
  lr: number;
  batch: number;
  /** Checkpoint folder. */
  out: string;
  /** Where training steps run (default: the CPU). */
  provider?: Provider;
  log?: (line: string) => void;
}

/** Fine-tunes `model` in place with `hw`'s noise, checkpointing into `o.out` (resumes from it). */
export async function noiseAwareFinetune(
  model: Model,
  data: EvalData,
  hw: ResolvedSpec,
  o: FinetuneOptions,
): Promise<void> {
  await train(model, data, {
    epochs: o.epochs,
    lr: o.lr,
    batch: o.batch,
    out: o.out,
    hardware: new NoiseAwareTraining(hw, 0),
    quiet: true,
    ...(o.provider ? { provider: o.provider } : {}),
    ...(o.log ? { log: o.log } : {}),
  });
}
