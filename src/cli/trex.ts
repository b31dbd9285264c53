/** `xbar trex search`: TReX's hardware-aware search for attention reuse (see methods/trex/search.ts). */
import type { Command } from 'commander';
import { loadSpec } from '../analog/presets.js';
import { InputError } from '../eval/predict.js';
import { openTrexData } from '../methods/trex/data.js';
import { trexExperiment } from '../methods/trex/experiment.js';
import { FINETUNE_AVAILABLE } from '../methods/trex/finetune.js';
import { BRIEF_DEFAULTS, trexSearch } from '../methods/trex/search.js';
import { loadModel, type Model } from '../models/index.js';
import { positiveInt } from './eval.js';

export const positiveNumber =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!(n > 0)) throw new InputError(`${flag} ${v}: expected a number > 0`);
    return n;
  };
const fraction = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!(n > 0 && n <= 1)) throw new InputError(`${flag} ${v}: expected a number in (0, 1]`);
  return n;
};
const nonNegative = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!(n >= 0)) throw new InputError(`${flag} ${v}: expected a number ≥ 0`);
  return n;
};

/** Options of the brief training and fine-tuning, shared by `trex search` and `experiment trex`. */
export function trainingOptions(c: Command, defaults: { fraction: number; heldOut: number }): Command {
  return c
    .option(
      '--fraction <f>',
      'fraction of the training set for the brief training',
      fraction('--fraction'),
      defaults.fraction,
    )
    .option(
      '--held-out <n>',
      'training examples held out to compare losses',
      positiveInt('--held-out'),
      defaults.heldOut,
    )
    .option('--epochs <n>', 'epochs of brief training', positiveInt('--epochs'), BRIEF_DEFAULTS.epochs)
    .option('--batch <n>', 'batch size', positiveInt('--batch'), BRIEF_DEFAULTS.batch)
    .option('--lr <x>', 'peak learning rate of the brief training', positiveNumber('--lr'), BRIEF_DEFAULTS.lr)
    .option(
      '--ce-weight <w>',
      'distillation: weight of the label cross-entropy',
      nonNegative('--ce-weight'),
      BRIEF_DEFAULTS.ceWeight,
    )
    .option(
      '--kl-weight <w>',
      'distillation: weight of the KL to the teacher',
      nonNegative('--kl-weight'),
      BRIEF_DEFAULTS.klWeight,
    )
    .option(
      '--temperature <T>',
      'distillation temperature',
      positiveNumber('--temperature'),
      BRIEF_DEFAULTS.temperature,
    )
    .option('--seed <n>', 'seed of shuffling', Number, BRIEF_DEFAULTS.seed)
    .option(
      '--max-length <n>',
      'token limit for text (and the tokens the cost model assumes)',
      positiveInt('--max-length'),
      128,
    )
    .option('--no-finetune', 'skip the noise-aware fine-tuning of the winner')
    .option('--finetune-epochs <n>', 'epochs of noise-aware fine-tuning', positiveInt('--finetune-epochs'), 1)
    .option(
      '--finetune-lr <x>',
      'learning rate of noise-aware fine-tuning',
      positiveNumber('--finetune-lr'),
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
  data: string;
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
      .requiredOption('--model <dir>', 'the trained model (HF folder): teacher and initialisation')
      .requiredOption('--data <spec>', 'KIND:PATH; its training split is used')
      .requiredOption(
        '--hw <spec>',
        'hardware preset or spec file the delay is computed for (e.g. fefet-trex)',
      )
      .option(
        '--set <field=value>',
        'override a hardware field (repeatable)',
        (v: string, p: string[]) => [...p, v],
        [],
      )
      .requiredOption(
        '--target-delay <ms>',
        'target delay of one inference, ms',
        positiveNumber('--target-delay'),
      )
      .option('--out <dir>', 'working folder (search.json, patterns/, finetuned/)', 'runs/trex-search'),
    { fraction: 0.2, heldOut: 2000 },
  ).action(async (o: SearchFlags) => {
    const model = loadModel(o.model);
    const hw = loadSpec(o.hw, o.set, model);
    const finetune = finetuneFrom(o);
    const data = openTrexData(model, o.model, o.data, {
      fraction: o.fraction,
      heldOut: o.heldOut,
      maxLength: o.maxLength,
    });
    const state = await trexSearch({
      model,
      modelDir: o.model,
      train: data.train,
      heldOut: data.heldOut,
      hw,
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
  data?: string;
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
      .requiredOption('--model <dir>', 'the trained model (HF folder)')
      .option('--data <spec>', 'KIND:PATH (default fashion-mnist for the shipped ViT)')
      .option('--out <dir>', 'results folder (results.json, results.md, pareto-*.svg/png)', 'results/trex')
      .option(
        '--hw <list>',
        'hardware, comma-separated; the first sets the target delays',
        'fefet-trex,hybrid-trex',
      )
      .option(
        '--targets <ms,…>',
        'target delays in ms (default: the delay of each N_reuse 1..L−1 on the first --hw)',
        (v: string) =>
          v.split(',').map((x) => {
            const n = Number(x);
            if (!(n > 0)) throw new InputError(`--targets ${v}: expected delays in ms > 0, comma-separated`);
            return n;
          }),
      )
      .option('--repeats <n>', 'Monte Carlo instances per non-ideal evaluation', positiveInt('--repeats'), 2)
      .option(
        '--hw-limit <n>',
        'evaluation examples on hardware (the first n)',
        positiveInt('--hw-limit'),
        200,
      )
      .option(
        '--eval-limit <n>',
        'evaluation examples for the ideal accuracy (default all)',
        positiveInt('--eval-limit'),
      ),
    { fraction: 0.1, heldOut: 1000 },
  ).action(async (o: ExperimentFlags) => {
    const model = loadModel(o.model);
    const hardware = o.hw.split(',').map((h) => h.trim());
    for (const h of hardware) loadSpec(h); // a misspelt preset fails before any training
    const finetune = finetuneFrom(o);
    const data = openTrexData(model, o.model, o.data ?? defaultData(model), {
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
      out: o.out,
    });
    process.stderr.write(
      `done in ${((performance.now() - t0) / 60e3).toFixed(1)} min; results in ${o.out}\n`,
    );
  });
}
