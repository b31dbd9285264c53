/** `xbar train`: train or fine-tune a model on a data set, with checkpoints and resume. */
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { loadSpec } from '../analog/presets.js';
import { openData, parseDataSpec } from '../eval/data.js';
import { InputError } from '../eval/predict.js';
import { loadModelConfig } from '../models/config.js';
import { loadModel, type Model, randomModel } from '../models/index.js';
import { hasCheckpoint } from '../train/checkpoint.js';
import { train } from '../train/loop.js';
import { NoiseAwareTraining } from '../train/noise-aware.js';
import { positiveInt } from './eval.js';

const positiveNumber =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!(n > 0)) throw new InputError(`${flag} ${v}: expected a number > 0`);
    return n;
  };

interface TrainFlags {
  model: string;
  data: string;
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
  program
    .command('train')
    .description('train a model (from an HF config.json) or fine-tune one (an HF folder); resumes from --out')
    .requiredOption('--model <path>', 'HF config.json (random init) or model folder (fine-tune)')
    .requiredOption('--data <spec>', 'training data, KIND:PATH (its train split; evaluation on test/dev)')
    .requiredOption('--out <dir>', 'checkpoint folder (HF format + optimizer state); rerun to resume')
    .option('--epochs <n>', 'epochs', positiveInt('--epochs'), 10)
    .option('--batch <n>', 'batch size', positiveInt('--batch'), 64)
    .option('--lr <x>', 'peak learning rate', positiveNumber('--lr'), 1e-3)
    .option('--weight-decay <x>', 'AdamW decoupled weight decay', Number, 0.05)
    .option('--label-smoothing <x>', 'label smoothing ε', Number, 0)
    .option(
      '--schedule <kind>',
      'cosine | linear | constant (after 5 % warm-up)',
      (v: string) => {
        if (!['cosine', 'linear', 'constant'].includes(v))
          throw new InputError(`--schedule ${v}: use cosine, linear or constant`);
        return v;
      },
      'cosine',
    )
    .option('--augment', 'random shifts (±2 px) and flips of images')
    .option('--limit <n>', 'use the first n training examples', positiveInt('--limit'))
    .option(
      '--eval-limit <n>',
      'evaluate on the first n test/dev examples each epoch',
      positiveInt('--eval-limit'),
      2000,
    )
    .option('--seed <n>', 'seed of initialisation and shuffling', Number, 0)
    .option(
      '--dropout <p>',
      'hidden dropout probability while training',
      (v: string) => {
        const p = Number(v);
        if (!(p >= 0 && p < 1)) throw new InputError(`--dropout ${v}: use a probability in [0, 1)`);
        return p;
      },
      0,
    )
    .option(
      '--provider <name>',
      'where training steps run: cpu or webgpu (ONNX Runtime execution provider)',
      (v: string) => {
        if (v !== 'cpu' && v !== 'webgpu') throw new InputError(`--provider ${v}: use cpu or webgpu`);
        return v;
      },
      'cpu',
    )
    .option(
      '--hwa <spec>',
      "noise-aware training: the hardware preset or spec file whose noise the forward pass draws (ClipFormer's VAT)",
    )
    .option(
      '--gamma <g>',
      'with --hwa: the K/V write-noise γ (ClipFormer trains with 2)',
      positiveNumber('--gamma'),
    )
    .option(
      '--range-lr <x>',
      "with --hwa and a 'learned' dac.range or conductanceRange: the ranges' peak learning rate (default --lr)",
      positiveNumber('--range-lr'),
    )
    .option('--set <field=value>', 'with --hwa: override a hardware field (repeatable)', collect, [])
    .option('--max-length <n>', 'token limit for text', positiveInt('--max-length'), 128)
    .action(async (o: TrainFlags) => {
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
          : randomModel(loadModelConfig(o.model), o.seed, 0.02);
      const modelDir = isDir ? o.model : undefined;
      if (isDir) copyProcessorFiles(o.model, o.out);
      const spec = parseDataSpec(o.data);
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

const collect = (v: string, prev: string[]): string[] => [...prev, v];

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

/** Tokenizer and preprocessor files a checkpoint needs beside its weights to be a usable model folder. */
const PROCESSOR_FILES = [
  'vocab.txt',
  'vocab.json',
  'merges.txt',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'preprocessor_config.json',
];

function copyProcessorFiles(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const f of PROCESSOR_FILES) {
    if (existsSync(join(from, f)) && !existsSync(join(to, f))) copyFileSync(join(from, f), join(to, f));
  }
}
