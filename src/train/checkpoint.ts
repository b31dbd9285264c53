/**
 * Training checkpoints in Hugging Face form (config.json + model.safetensors, loadable by
 * transformers) plus optimizer.safetensors (AdamW moments) and trainer_state.json. Every file
 * is written atomically; a checkpoint is complete once trainer_state.json exists.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { hostArray } from '../graph/ndarray.js';
import { readSafetensors, writeSafetensors } from '../io/safetensors.js';
import { type Model, toHfConfig } from '../models/index.js';
import { InputError } from '../util/errors.js';
import { readJson, writeFileAtomic } from '../util/files.js';
import type { AdamW } from './adamw.js';

export interface TrainerState {
  /** Epochs completed. */
  epoch: number;
  step: number;
  /** The model the checkpoint belongs to: family and shapes, checked on resume. */
  signature: string;
  history: { epoch: number; loss: number; metric?: number; seconds: number }[];
}

/** Family, sizes and labels: what must match to resume. */
export const modelSignature = (m: Model): string => JSON.stringify(toHfConfig(m.config));

export function saveCheckpoint(
  dir: string,
  model: Model,
  opt: AdamW,
  state: TrainerState,
  /** Writes other files of the checkpoint (learned ranges) before it is marked complete. */
  writeExtra: () => void = () => {},
): void {
  writeFileAtomic(join(dir, 'config.json'), `${JSON.stringify(toHfConfig(model.config), null, 2)}\n`);
  writeSafetensors(join(dir, 'model.safetensors'), model.store.toHf());
  const st = opt.state();
  const moments: Record<string, ReturnType<typeof hostArray>> = {};
  st.m.forEach((m, k) => {
    moments[`m.${k}`] = hostArray('float32', [m.length], m);
    moments[`v.${k}`] = hostArray('float32', [m.length], st.v[k]!);
  });
  writeSafetensors(join(dir, 'optimizer.safetensors'), moments, { step: String(st.t) });
  writeExtra();
  writeFileAtomic(join(dir, 'trainer_state.json'), `${JSON.stringify(state, null, 2)}\n`);
}

export const hasCheckpoint = (dir: string): boolean => existsSync(join(dir, 'trainer_state.json'));

/** Epochs the checkpoint in `dir` completed (0: none there). */
export const completedEpochs = (dir: string): number =>
  hasCheckpoint(dir) ? (readJson(join(dir, 'trainer_state.json')) as TrainerState).epoch : 0;

/** Reads the trainer state and optimizer moments; throws if they belong to another model. */
export function loadTrainerState(dir: string, model: Model, opt: AdamW): TrainerState {
  const file = join(dir, 'trainer_state.json');
  const state = readJson(file) as TrainerState;
  if (state.signature !== modelSignature(model)) {
    throw new InputError(
      `${file}: this checkpoint belongs to another model (its config differs); use a new --out folder or the same --model`,
    );
  }
  const ck = readSafetensors(join(dir, 'optimizer.safetensors'));
  const n = opt.params.length;
  const take = (p: string) =>
    Array.from({ length: n }, (_, k) => {
      const t = ck.tensors.get(`${p}.${k}`);
      if (!t) throw new InputError(`${ck.file}: missing '${p}.${k}' (a checkpoint of another model?)`);
      return t.toHost().data as Float32Array;
    });
  opt.loadState({ t: Number(ck.metadata['step'] ?? state.step), m: take('m'), v: take('v') });
  return state;
}
