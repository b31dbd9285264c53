/** `xbar experiment`: the method experiments, each a grid of Monte Carlo cells with a report. */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { openData, parseDataSpec } from '../eval/data.js';
import { runClipFormerExperiment } from '../experiments/clipformer.js';
import { runPtoExperiment } from '../experiments/pto.js';
import { loadModel } from '../models/index.js';
import { InputError } from '../util/errors.js';
import { positiveInt } from './eval.js';

const ROOT = new URL('../../../', import.meta.url).pathname;

interface ClipFormerFlags {
  model: string;
  vat?: string;
  data: string;
  hw: string;
  out: string;
  repeats: number;
  limit: number;
  calibration: number;
  searchInstances: number;
  searchObjective: 'accuracy' | 'snr';
  seed: number;
  batch: number;
  maxLength: number;
}

const seedFlag = (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InputError(`--seed ${v}: expected a whole number ≥ 0`);
  return n;
};

export function registerExperiment(program: Command): Command {
  const exp = program
    .command('experiment')
    .description('method experiments with tables and plots (resumable)');
  exp
    .command('clipformer')
    .description('ClipFormer Table II: standard/VAT × γ 3,4,5 × without/with (paper and automatic α, β)')
    .requiredOption('--model <dir>', 'the standard model (Hugging Face folder)')
    .option('--vat <dir>', 'the variation-aware-trained model, a second row block')
    .option('--data <spec>', 'labelled data, KIND:PATH', `fashion-mnist:${ROOT}data/fashion-mnist-demo`)
    .option(
      '--hw <spec>',
      'hardware with K/V on crossbars and writeSqrt noise (γ is set per cell)',
      'rram-clipformer',
    )
    .option(
      '--out <dir>',
      'output folder (results.json, results.md, clipformer.svg/png)',
      'results/clipformer',
    )
    .option('--repeats <n>', 'Monte Carlo instances per cell', positiveInt('--repeats'), 10)
    .option('--limit <n>', 'examples evaluated per instance', positiveInt('--limit'), 20)
    .option(
      '--calibration <n>',
      'examples held out (the last of the data) for the (α, β) search',
      positiveInt('--calibration'),
      25,
    )
    .option('--search-instances <n>', 'instances per search candidate', positiveInt('--search-instances'), 1)
    .option(
      '--search-objective <what>',
      'what the automatic (α, β) maximises on the held-out part: accuracy, or the mean attention SNR (less noisy, but on the shipped ViT the SNR-best α costs accuracy)',
      (v: string) => {
        if (v !== 'snr' && v !== 'accuracy')
          throw new InputError(`--search-objective ${v}: use snr or accuracy`);
        return v;
      },
      'accuracy',
    )
    .option('--seed <n>', 'base seed: instance i uses seed + i', seedFlag, 0)
    .option('--batch <n>', 'batch size', positiveInt('--batch'), 50)
    .option('--max-length <n>', 'token limit for text', positiveInt('--max-length'), 128)
    .action(async (o: ClipFormerFlags) => {
      const t0 = performance.now();
      const models = [
        { name: 'standard' as const, dir: o.model },
        ...(o.vat ? [{ name: 'vat' as const, dir: o.vat }] : []),
      ].map((m) => ({ ...m, model: loadModel(m.dir) }));
      const first = models[0]!;
      // data are opened once for the first model; a VAT model shares its preprocessing
      const data = openData(parseDataSpec(o.data), first.model, {
        modelDir: first.dir,
        maxLength: o.maxLength,
      });
      if (data.size < o.calibration + 1)
        throw new InputError(`--calibration ${o.calibration}: ${data.name} has only ${data.size} examples`);
      const e = await runClipFormerExperiment({
        models,
        data,
        dataSpec: o.data,
        hw: o.hw,
        out: resolve(o.out),
        repeats: o.repeats,
        seed: o.seed,
        limit: Math.min(o.limit, data.size - o.calibration),
        calibration: o.calibration,
        searchInstances: o.searchInstances,
        searchObjective: o.searchObjective,
        batch: o.batch,
      });
      console.log(
        `${e.out}/results.md, clipformer.svg/png (${((performance.now() - t0) / 1e3).toFixed(0)} s)`,
      );
    });
  exp
    .command('pto')
    .description(
      'post-training range optimisation (PTO Table II): models × input and conductance ranges as trained or optimised at 1 h, and accuracy against time with re-calibration',
    )
    .requiredOption('--model <dir>', 'the model as trained (Hugging Face folder)')
    .option('--hwa <dir>', 'its hardware-aware-trained twin, a second row')
    .option(
      '--learned <dir>',
      "a twin trained with learned input ranges and conductance scales (xbar train --hwa with 'learned' ranges), a third row",
    )
    .option('--data <spec>', 'labelled data, KIND:PATH', `glue-sst2:${ROOT}data/sst2-demo`)
    .option('--hw <spec>', 'hardware preset or spec file', 'pcm-lammie')
    .option('--out <dir>', 'output folder (results.json, results.md, pto.svg/png)', 'results/pto')
    .option('--repeats <n>', 'instances per cell of the 1 h table', positiveInt('--repeats'), 10)
    .option('--time-repeats <n>', 'instances per cell of the time sweep', positiveInt('--time-repeats'), 3)
    .option(
      '--calibration <n>',
      'examples held out (the last of the data) to calibrate on',
      positiveInt('--calibration'),
      64,
    )
    .option('--percentile <k>', 'K: the percentile of |x| that sets a tile’s range', Number, 99.99)
    .option(
      '--sigmas <L>',
      'L: a column shrinks where μ + L·σ of its current exceeds the ADC saturation',
      Number,
      3,
    )
    .option('--limit <n>', 'examples scored per instance', positiveInt('--limit'), 808)
    .option('--seed <n>', 'base seed: instance i uses seed + i', seedFlag, 0)
    .option('--batch <n>', 'batch size', positiveInt('--batch'), 64)
    .option('--max-length <n>', 'token limit for text', positiveInt('--max-length'), 128)
    .action(
      async (o: {
        model: string;
        hwa?: string;
        learned?: string;
        data: string;
        hw: string;
        out: string;
        repeats: number;
        timeRepeats: number;
        calibration: number;
        percentile: number;
        sigmas: number;
        limit: number;
        seed: number;
        batch: number;
        maxLength: number;
      }) => {
        if (!(o.percentile > 0 && o.percentile <= 100))
          throw new InputError(`--percentile ${o.percentile}: use a number in (0, 100]`);
        if (!(o.sigmas >= 0)) throw new InputError(`--sigmas ${o.sigmas}: use a number ≥ 0`);
        const t0 = performance.now();
        const models = [
          { name: 'as trained', dir: o.model },
          ...(o.hwa ? [{ name: 'HWA-trained', dir: o.hwa }] : []),
          ...(o.learned ? [{ name: 'HWA-trained, ranges learned', dir: o.learned, learned: true }] : []),
        ].map((m) => {
          const model = loadModel(m.dir);
          const data = openData(parseDataSpec(o.data), model, { modelDir: m.dir, maxLength: o.maxLength });
          if (data.size < o.calibration + 1)
            throw new InputError(
              `--calibration ${o.calibration}: ${data.name} has only ${data.size} examples`,
            );
          return { ...m, model, data };
        });
        const e = await runPtoExperiment({
          models,
          dataSpec: o.data,
          hw: o.hw,
          out: resolve(o.out),
          repeats: o.repeats,
          timeRepeats: o.timeRepeats,
          seed: o.seed,
          calibration: o.calibration,
          percentile: o.percentile,
          sigmas: o.sigmas,
          limit: Math.min(o.limit, models[0]!.data.size - o.calibration),
          batch: o.batch,
        });
        console.log(`${e.out}/results.md, pto.svg/png (${((performance.now() - t0) / 1e3).toFixed(0)} s)`);
      },
    );
  return exp;
}
