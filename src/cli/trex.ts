/** `xbar trex search` and `xbar experiment trex`: TReX's search for attention reuse and its Table IV. */
import type { Command } from 'commander';
import { loadSpec } from '../analog/presets.js';
import { openTrexData } from '../methods/trex/data.js';
import { BRIEF_DEFAULTS, trexSearch } from '../methods/trex/search.js';
import { loadModel, type Model } from '../models/index.js';
import { EXPERIMENT_STORE } from '../sweep/experiment.js';
import { runTrex } from '../sweep/trex.js';
import { InputError } from '../util/errors.js';
import { portablePath } from '../util/files.js';
import {
  type DataFlag,
  dataFlag,
  flag,
  numberList,
  opt,
  providerOf,
  type RunFlags,
  runFlags,
  runOptionsOf,
  withOptions,
} from './flags.js';

/** Options of the brief training and fine-tuning, shared by `trex search` and `experiment trex`. */
const trainingOptions = (defaults: { fraction: number; heldOut: number }, d = BRIEF_DEFAULTS) => [
  opt(
    '--fraction <f>',
    'fraction of the training set to train on briefly',
    { gt: 0, max: 1 },
    defaults.fraction,
  ),
  opt('--held-out <n>', 'training examples held out to compare losses', 1, defaults.heldOut),
  flag('epochs', { help: 'epochs of brief training', value: d.epochs }),
  flag('batch', { value: d.batch }),
  flag('lr', { help: 'peak learning rate of the brief training', value: d.lr }),
  opt('--ce-weight <w>', 'distillation: weight of the label cross-entropy', { min: 0 }, d.ceWeight),
  opt('--kl-weight <w>', 'distillation: weight of the KL to the teacher', { min: 0 }, d.klWeight),
  opt('--temperature <T>', 'distillation temperature', { gt: 0 }, d.temperature),
  flag('seed', { help: 'seed of shuffling', value: d.seed }),
  flag('maxLength', { help: 'token limit for text (and the tokens the cost model assumes)', value: 128 }),
  opt('--no-finetune', 'skip the noise-aware fine-tuning of the winner'),
  opt('--finetune-epochs <n>', 'epochs of noise-aware fine-tuning', 1, 1),
  opt('--finetune-lr <x>', 'learning rate of noise-aware fine-tuning', { gt: 0 }, 1e-4),
  flag('provider', { help: 'where training steps and evaluations run: cpu, webgpu or auto', value: 'cpu' }),
  flag('gpu'),
];

interface TrainingFlags {
  model: string;
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
  provider: 'cpu' | 'webgpu' | 'auto';
  gpu?: string;
}

/** What both commands pass on: the brief training, fine-tuning (null: none) and text length. */
const training = async (o: TrainingFlags, model: Model) => ({
  model,
  provider: await providerOf(o),
  modelDir: o.model,
  brief: {
    epochs: o.epochs,
    batch: o.batch,
    lr: o.lr,
    seed: o.seed,
    ceWeight: o.ceWeight,
    klWeight: o.klWeight,
    temperature: o.temperature,
  },
  finetune: o.finetune ? { epochs: o.finetuneEpochs, lr: o.finetuneLr, batch: o.batch } : null,
  ...(model.input().kind === 'text' ? { seqLen: o.maxLength } : {}),
});

interface SearchFlags extends TrainingFlags {
  data: DataFlag;
  hw: string;
  set: string[];
  targetDelay: number;
  out: string;
}

export function registerTrex(program: Command): void {
  const trex = program.command('trex').description('TReX attention reuse (Moitra et al., TETC 2024)');
  withOptions(
    trex
      .command('search')
      .description(
        'pick the reuse encoders for a target delay, train them, fine-tune the winner; rerun resumes',
      ),
    flag('model', { help: 'the trained model (HF folder): teacher and initialisation', required: true }),
    flag('data', { help: 'KIND:PATH; its training split is used', required: true }),
    flag('hw', { help: 'hardware the delay is computed for (e.g. fefet-trex)', required: true }),
    flag('set'),
    opt('--target-delay <ms>', 'target delay of one inference, ms', { gt: 0 }).makeOptionMandatory(),
    flag('out', { help: 'working folder (search.json, patterns/, finetuned/)', value: 'runs/trex-search' }),
    ...trainingOptions({ fraction: 0.2, heldOut: 2000 }),
  ).action(async (o: SearchFlags) => {
    const model = loadModel(o.model);
    const hw = loadSpec(o.hw, o.set, model);
    const data = openTrexData(model, o.model, o.data.text, {
      fraction: o.fraction,
      heldOut: o.heldOut,
      maxLength: o.maxLength,
    });
    const state = await trexSearch({
      ...(await training(o, model)),
      train: data.train,
      heldOut: data.heldOut,
      hw,
      targetDelayMs: o.targetDelay,
      out: o.out,
    });
    const { nReuse, delayMs } = state.choice;
    console.log(JSON.stringify({ nReuse, delayMs, winner: state.winner ?? null, model: state.result }));
  });
}

interface ExperimentFlags extends TrainingFlags, RunFlags {
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
  const input = model.input();
  if (input.kind === 'image' && input.channels === 1 && c.labels.length === 10) {
    return 'fashion-mnist:/usr/share/datasets/fashion-mnist';
  }
  throw new InputError('--data is needed for this model (e.g. glue-sst2:DIR for an SST-2 model)');
}

export function registerTrexExperiment(experiment: Command): void {
  withOptions(
    experiment
      .command('trex')
      .description(
        `TReX Table IV for several target delays, baselines (weight sharing, token pruning), Pareto plot, patterns (a sweep: searches, trainings and evaluations as points in OUT/${EXPERIMENT_STORE}); rerun resumes`,
      ),
    flag('model', { help: 'the trained model (HF folder)', required: true }),
    flag('data', { help: 'KIND:PATH (default fashion-mnist for the shipped ViT)' }),
    flag('out', {
      help: `results folder (${EXPERIMENT_STORE}, results.md, pareto-*.vl.json/svg/png, patterns.*; the models trained in patterns/, baselines/, search/, finetuned/)`,
      value: 'runs/trex',
    }),
    opt(
      '--hw <list>',
      'hardware, comma-separated; the first sets the delays',
      undefined,
      'fefet-trex,hybrid-trex',
    ),
    opt(
      '--targets <ms,…>',
      'target delays, ms (default: each N_reuse’s on the first --hw)',
      numberList('--targets', { gt: 0 }),
    ),
    opt('--repeats <n>', 'Monte Carlo instances per non-ideal evaluation', 1, 2),
    opt('--hw-limit <n>', 'evaluation examples on hardware (the first n)', 1, 200),
    opt('--eval-limit <n>', 'evaluation examples for the ideal accuracy (default all)', 1),
    ...trainingOptions({ fraction: 0.1, heldOut: 1000 }),
    ...runFlags({
      unit: 'a search, a training, an evaluation',
      queueNote: 'the trained models are written under --out, so the workers must share its file system',
    }),
  ).action(async (o: ExperimentFlags, command: Command) => {
    const how = runOptionsOf(o, command);
    const modelDir = portablePath(o.model);
    const model = loadModel(modelDir);
    const hardware = o.hw.split(',').map((h) => h.trim());
    for (const h of hardware) loadSpec(h); // a misspelt preset fails before any training
    const data = o.data ?? dataFlag(defaultData(model));
    const t0 = performance.now();
    const { brief, finetune, provider } = await training(o, model);
    const e = await runTrex({
      model,
      modelDir,
      dataSpec: `${data.kind}:${portablePath(data.path)}`,
      hardware,
      ...(o.targets ? { targets: o.targets } : {}),
      fraction: o.fraction,
      heldOut: o.heldOut,
      brief,
      finetune,
      maxLength: o.maxLength,
      repeats: o.repeats,
      hwLimit: o.hwLimit,
      seed: o.seed,
      ...(o.evalLimit ? { evalLimit: o.evalLimit } : {}),
      out: portablePath(o.out),
      provider,
      ...how,
    });
    process.stderr.write(
      `done in ${((performance.now() - t0) / 60e3).toFixed(1)} min; results in ${o.out}: ${EXPERIMENT_STORE} (${e.storedNow} points stored now, ${e.storedBefore} before), results.md, pareto-*, patterns.*\n`,
    );
  });
}
