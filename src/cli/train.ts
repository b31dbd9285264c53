/** `xbar train`: train or fine-tune a model on a data set, with checkpoints and resume. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadSpec } from '../analog/presets.js';
import { openData } from '../eval/data.js';
import {
  copyProcessorFiles,
  loadModel,
  loadModelConfig,
  type Model,
  parseModelConfig,
  randomModel,
} from '../models/index.js';
import { hasCheckpoint } from '../train/checkpoint.js';
import { train } from '../train/loop.js';
import { NoiseAwareTraining } from '../train/noise-aware.js';
import { InputError } from '../util/errors.js';
import { readJson } from '../util/files.js';
import { type DataFlag, flag, opt, withOptions } from './flags.js';

interface TrainFlags {
  model: string;
  data: DataFlag;
  out: string;
  epochs: number;
  batch: number;
  lr: number;
  weightDecay: number;
  labelSmoothing: number;
  schedule: 'cosine' | 'linear' | 'constant';
  augment: boolean;
  limit?: number;
  evalLimit: number;
  seed: number;
  maxLength: number;
  dropout: number;
  provider: 'cpu' | 'webgpu';
  hwa?: string;
  gamma?: number;
  rangeLr?: number;
  set: string[];
}

export function registerTrain(program: Command): void {
  withOptions(
    program
      .command('train')
      .description(
        'train a model (from an HF config.json) or fine-tune one (an HF folder); resumes from --out',
      ),
    flag('model', { help: 'HF config.json (random init) or model folder (fine-tune)', required: true }),
    flag('data', {
      help: 'training data, KIND:PATH (its train split; evaluation on test/dev)',
      required: true,
    }),
    flag('out', { help: 'checkpoint folder (HF format + optimizer state); rerun to resume', required: true }),
    flag('epochs', { value: 10 }),
    flag('batch', { value: 64 }),
    flag('lr', { value: 1e-3 }),
    opt('--weight-decay <x>', 'AdamW decoupled weight decay', { min: 0 }, 0.05),
    opt('--label-smoothing <x>', 'label smoothing ε', { min: 0, lt: 1 }, 0),
    opt('--schedule <kind>', 'decay after 5 % warm-up', ['cosine', 'linear', 'constant'], 'cosine'),
    opt('--augment', 'random shifts (±2 px) and flips of images'),
    flag('limit', { help: 'use the first n training examples' }),
    opt('--eval-limit <n>', 'evaluate on the first n test/dev examples each epoch', 1, 2000),
    flag('seed', { help: 'seed of initialisation and shuffling', value: 0 }),
    opt('--dropout <p>', 'hidden dropout probability while training', { min: 0, lt: 1 }, 0),
    opt(
      '--provider <name>',
      'where training steps run: the CPU (ONNX Runtime) or a GPU (xbar’s WebGPU runtime)',
      ['cpu', 'webgpu'],
      'cpu',
    ),
    opt('--hwa <spec>', 'noise-aware training on this hardware’s noise (ClipFormer’s VAT)'),
    opt('--gamma <g>', 'with --hwa: the K/V write-noise γ (ClipFormer trains with 2)', { gt: 0 }),
    opt('--range-lr <x>', 'with --hwa: peak learning rate of learned ranges (default --lr)', { gt: 0 }),
    flag('set', { help: 'with --hwa: override a hardware field (repeatable)' }),
    flag('maxLength', { value: 128 }),
  ).action(async (o: TrainFlags) => {
    if (!o.hwa) {
      // flags of noise-aware training mean nothing without it: say so instead of ignoring them
      if (o.gamma !== undefined) throw new InputError('--gamma needs --hwa');
      if (o.rangeLr !== undefined)
        throw new InputError('--range-lr needs --hwa (the learning rate of learned ranges)');
      if (o.set.length > 0)
        throw new InputError(`--set ${o.set[0]}: needs --hwa (it overrides a hardware field)`);
    }
    // resume: the checkpoint in --out has the weights; its optimizer state is read by train()
    const fromCheckpoint = hasCheckpoint(o.out);
    const isDir = existsSync(o.model) && statSync(o.model).isDirectory();
    // a folder with config.json (and tokenizer) but no weights starts from random weights
    const hasWeights =
      isDir &&
      ['model.safetensors', 'model.safetensors.index.json'].some((f) => existsSync(join(o.model, f)));
    const model = fromCheckpoint
      ? loadModel(o.out)
      : hasWeights
        ? loadModel(o.model)
        : randomModel(
            isDir ? loadModelConfig(o.model) : parseModelConfig(readJson(o.model), o.model),
            o.seed,
            0.02,
          );
    const modelDir = isDir ? o.model : undefined;
    if (isDir) copyProcessorFiles(o.model, o.out);
    const spec = o.data;
    const common = { maxLength: o.maxLength, ...(modelDir ? { modelDir } : { modelDir: o.out }) };
    const data = openData(spec, model, {
      ...common,
      split: 'train',
      ...(o.limit ? { limit: o.limit } : {}),
    });
    const evalData = openData(spec, model, { ...common, limit: o.evalLimit });
    await train(model, data, {
      epochs: o.epochs,
      batch: o.batch,
      lr: o.lr,
      weightDecay: o.weightDecay,
      labelSmoothing: o.labelSmoothing,
      schedule: o.schedule,
      dropout: o.dropout,
      ...(o.hwa ? { hardware: new NoiseAwareTraining(trainingSpec(o, model), o.seed) } : {}),
      ...(o.rangeLr ? { rangeLr: o.rangeLr } : {}),
      provider: o.provider,
      seed: o.seed,
      out: o.out,
      evalData,
      ...(o.augment ? { augment: { shift: 2, flip: true } } : {}),
    });
    console.log(`checkpoint: ${join(o.out, 'model.safetensors')}`);
  });
}

/** The spec noise-aware training draws from: --hwa with --set and --gamma applied. */
function trainingSpec(o: TrainFlags, model: Model) {
  const sets = [...o.set, ...(o.gamma === undefined ? [] : [`attention.device.program.gamma=${o.gamma}`])];
  const hw = loadSpec(o.hwa!, sets, model);
  if (o.gamma !== undefined && !hw.attention)
    throw new InputError(
      `--gamma ${o.gamma}: ${hw.spec.name} keeps attention digital, so K/V have no write noise`,
    );
  return hw;
}
