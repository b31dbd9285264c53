/** `xbar trex search`: TReX's hardware-aware search for attention reuse (see methods/trex/search.ts). */
import type { Command } from 'commander';
import { loadSpec } from '../analog/presets.js';
import { InputError } from '../eval/predict.js';
import { openTrexData } from '../methods/trex/data.js';
import { trexExperiment } from '../methods/trex/experiment.js';
import { FINETUNE_AVAILABLE } from '../methods/trex/finetune.js';
import { BRIEF_DEFAULTS, trexSearch } from '../methods/trex/search.js';
import { loadModel, type Model } from '../models/index.js';
import { portablePath } from '../util/files.js';
import { type DataFlag, finiteNumber, flag, numberList, wholeNumber } from './flags.js';

/** Options of the brief training and fine-tuning, shared by `trex search` and `experiment trex`. */
export function trainingOptions(c: Command, defaults: { fraction: number; heldOut: number }): Command {
  return c
    .option(
      '--fraction <f>',
      'fraction of the training set for the brief training',
      finiteNumber('--fraction', { gt: 0, max: 1 }),
      defaults.fraction,
    )
    .option(
      '--held-out <n>',
      'training examples held out to compare losses',
      wholeNumber('--held-out'),
      defaults.heldOut,
    )
    .addOption(flag('epochs', { help: 'epochs of brief training', value: BRIEF_DEFAULTS.epochs }))
    .addOption(flag('batch', { value: BRIEF_DEFAULTS.batch }))
    .addOption(flag('lr', { help: 'peak learning rate of the brief training', value: BRIEF_DEFAULTS.lr }))
    .option(
      '--ce-weight <w>',
      'distillation: weight of the label cross-entropy',
      finiteNumber('--ce-weight', { min: 0 }),
      BRIEF_DEFAULTS.ceWeight,
    )
    .option(
      '--kl-weight <w>',
      'distillation: weight of the KL to the teacher',
      finiteNumber('--kl-weight', { min: 0 }),
      BRIEF_DEFAULTS.klWeight,
    )
    .option(
      '--temperature <T>',
      'distillation temperature',
      finiteNumber('--temperature', { gt: 0 }),
      BRIEF_DEFAULTS.temperature,
    )
    .addOption(flag('seed', { help: 'seed of shuffling', value: BRIEF_DEFAULTS.seed }))
    .addOption(
      flag('maxLength', { help: 'token limit for text (and the tokens the cost model assumes)', value: 128 }),
    )
    .option('--no-finetune', 'skip the noise-aware fine-tuning of the winner')
    .option('--finetune-epochs <n>', 'epochs of noise-aware fine-tuning', wholeNumber('--finetune-epochs'), 1)
    .option(
      '--finetune-lr <x>',
      'learning rate of noise-aware fine-tuning',
      finiteNumber('--finetune-lr', { gt: 0 }),
      1e-4,
    );
}

export interface TrainingFlags {
  fraction: number;
  heldOut: number;
  epochs: number;
  batch: number;
  lr: number;
  ceWeight: number;
  klWeight: number;
  temperature: number;
  seed: number;
  maxLength: number;
  finetune: boolean;
  finetuneEpochs: number;
  finetuneLr: number;
}

export const briefFrom = (o: TrainingFlags) => ({
  epochs: o.epochs,
  batch: o.batch,
  lr: o.lr,
  seed: o.seed,
  ceWeight: o.ceWeight,
  klWeight: o.klWeight,
  temperature: o.temperature,
});

/** Fine-tuning settings, or null with `--no-finetune`; a clear error while it is unavailable. */
export function finetuneFrom(o: TrainingFlags) {
  if (!o.finetune) return null;
  if (!FINETUNE_AVAILABLE) {
    throw new InputError(
      'noise-aware fine-tuning is not in this build yet (noise-aware training is being merged); add --no-finetune',
    );
  }
  return { epochs: o.finetuneEpochs, lr: o.finetuneLr, batch: o.batch };
}

interface SearchFlags extends TrainingFlags {
  model: string;
  data: DataFlag;
  hw: string;
  set: string[];
  targetDelay: number;
  out: string;
}

export function registerTrex(program: Command): void {
  const trex = program.command('trex').description('TReX attention reuse (Moitra et al., TETC 2024)');
  trainingOptions(
    trex
      .command('search')
      .description(
        'pick the reuse encoders for a target delay, train them, fine-tune the winner; rerun resumes',
      )
      .addOption(
        flag('model', { help: 'the trained model (HF folder): teacher and initialisation', required: true }),
      )
      .addOption(flag('data', { help: 'KIND:PATH; its training split is used', required: true }))
      .addOption(
        flag('hw', {
          help: 'hardware preset or spec file the delay is computed for (e.g. fefet-trex)',
          required: true,
        }),
      )
      .addOption(flag('set'))
      .requiredOption(
        '--target-delay <ms>',
        'target delay of one inference, ms',
        finiteNumber('--target-delay', { gt: 0 }),
      )
      .addOption(
        flag('out', {
          help: 'working folder (search.json, patterns/, finetuned/)',
          value: 'runs/trex-search',
        }),
      ),
    { fraction: 0.2, heldOut: 2000 },
  ).action(async (o: SearchFlags) => {
    const model = loadModel(o.model);
    const spec = loadSpec(o.hw, o.set);
    const finetune = finetuneFrom(o);
    const data = openTrexData(model, o.model, o.data.text, {
      fraction: o.fraction,
      heldOut: o.heldOut,
      maxLength: o.maxLength,
    });
    const state = await trexSearch({
      model,
      modelDir: o.model,
      train: data.train,
      heldOut: data.heldOut,
      spec,
      targetDelayMs: o.targetDelay,
      ...(model.config.family === 'bert' ? { seqLen: o.maxLength } : {}),
      brief: briefFrom(o),
      finetune,
      out: o.out,
    });
    console.log(
      JSON.stringify({
        nReuse: state.choice.nReuse,
        delayMs: state.choice.delayMs,
        winner: state.winner ?? null,
        model: state.result,
      }),
    );
  });
}

interface ExperimentFlags extends TrainingFlags {
  model: string;
  data?: DataFlag;
  out: string;
  hw: string;
  targets?: number[];
  repeats: number;
  hwLimit: number;
  evalLimit?: number;
}

/** Default data of a model: Fashion-MNIST for 10-class gray 28² ViTs; text models must name theirs. */
function defaultData(model: Model): string {
  const c = model.config;
  if (c.family === 'vit' && c.channels === 1 && c.labels.length === 10) {
    return 'fashion-mnist:/usr/share/datasets/fashion-mnist';
  }
  throw new InputError('--data is needed for this model (e.g. glue-sst2:DIR for an SST-2 model)');
}

export function registerTrexExperiment(experiment: Command): void {
  trainingOptions(
    experiment
      .command('trex')
      .description(
        'TReX Table IV for several target delays, baselines (weight sharing, token pruning), Pareto plot, patterns; rerun resumes',
      )
      .addOption(flag('model', { help: 'the trained model (HF folder)', required: true }))
      .addOption(flag('data', { help: 'KIND:PATH (default fashion-mnist for the shipped ViT)' }))
      .addOption(
        flag('out', {
          help: 'results folder (results.json, results.md, pareto-*.svg/png)',
          value: 'runs/trex',
        }),
      )
      .option(
        '--hw <list>',
        'hardware, comma-separated; the first sets the target delays',
        'fefet-trex,hybrid-trex',
      )
      .option(
        '--targets <ms,…>',
        'target delays in ms (default: the delay of each N_reuse 1..L−1 on the first --hw)',
        numberList('--targets', { gt: 0 }),
      )
      .addOption(flag('repeats', { help: 'Monte Carlo instances per non-ideal evaluation', value: 2 }))
      .option(
        '--hw-limit <n>',
        'evaluation examples on hardware (the first n)',
        wholeNumber('--hw-limit'),
        200,
      )
      .option(
        '--eval-limit <n>',
        'evaluation examples for the ideal accuracy (default all)',
        wholeNumber('--eval-limit'),
      ),
    { fraction: 0.1, heldOut: 1000 },
  ).action(async (o: ExperimentFlags) => {
    const model = loadModel(o.model);
    const hardware = o.hw.split(',').map((h) => h.trim());
    for (const h of hardware) loadSpec(h); // a misspelt preset fails before any training
    const finetune = finetuneFrom(o);
    const data = openTrexData(model, o.model, o.data?.text ?? defaultData(model), {
      fraction: o.fraction,
      heldOut: o.heldOut,
      maxLength: o.maxLength,
      ...(o.evalLimit ? { evalLimit: o.evalLimit } : {}),
    });
    const t0 = performance.now();
    await trexExperiment({
      model,
      modelDir: o.model,
      data,
      hardware,
      ...(o.targets ? { targets: o.targets } : {}),
      brief: briefFrom(o),
      finetune,
      repeats: o.repeats,
      hwLimit: o.hwLimit,
      seed: o.seed,
      ...(model.config.family === 'bert' ? { seqLen: o.maxLength } : {}),
      out: portablePath(o.out),
    });
    process.stderr.write(
      `done in ${((performance.now() - t0) / 60e3).toFixed(1)} min; results in ${o.out}\n`,
    );
  });
}
