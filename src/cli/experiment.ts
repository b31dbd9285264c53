/** `xbar experiment`: the method experiments, each a grid of Monte Carlo cells with a report. */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { openData } from '../eval/data.js';
import { InputError } from '../eval/predict.js';
import { runClipFormerExperiment } from '../experiments/clipformer.js';
import { runPtoExperiment } from '../experiments/pto.js';
import { loadModel } from '../models/index.js';
import { portablePath } from '../util/files.js';
import { type DataFlag, finiteNumber, flag, oneOf, wholeNumber } from './flags.js';

/** The shipped demo data, as a path from the working directory (results record it so). */
const shipped = (kind: string, dir: string) =>
  `${kind}:${portablePath(fileURLToPath(new URL(`../../../data/${dir}`, import.meta.url)))}`;

/** How results record data, hardware files and folders: relative to the working directory. */
const recorded = {
  data: (d: DataFlag) => `${d.kind}:${portablePath(d.path)}`,
  hw: (hw: string) => (existsSync(hw) ? portablePath(hw) : hw),
};

interface ClipFormerFlags {
  model: string;
  vat?: string;
  data: DataFlag;
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

export function registerExperiment(program: Command): Command {
  const exp = program
    .command('experiment')
    .description('method experiments with tables and plots (resumable)');
  exp
    .command('clipformer')
    .description('ClipFormer Table II: standard/VAT × γ 3,4,5 × without/with (paper and automatic α, β)')
    .addOption(flag('model', { help: 'the standard model (Hugging Face folder)', required: true }))
    .option('--vat <dir>', 'the variation-aware-trained model, a second row block')
    .addOption(
      flag('data', {
        help: 'labelled data, KIND:PATH',
        value: shipped('fashion-mnist', 'fashion-mnist-demo'),
      }),
    )
    .addOption(
      flag('hw', {
        help: 'hardware with K/V on crossbars and writeSqrt noise (γ is set per cell)',
        value: 'rram-clipformer',
      }),
    )
    .addOption(
      flag('out', {
        help: 'output folder (results.json, results.md, clipformer.svg/png)',
        value: 'runs/clipformer',
      }),
    )
    .addOption(flag('repeats', { help: 'Monte Carlo instances per cell', value: 10 }))
    .addOption(flag('limit', { help: 'examples evaluated per instance', value: 20 }))
    .option(
      '--calibration <n>',
      'examples held out (the last of the data) for the (α, β) search',
      wholeNumber('--calibration'),
      25,
    )
    .option('--search-instances <n>', 'instances per search candidate', wholeNumber('--search-instances'), 1)
    .option(
      '--search-objective <what>',
      'what the automatic (α, β) maximises on the held-out part: accuracy, or the mean attention SNR (less noisy, but on the shipped ViT the SNR-best α costs accuracy)',
      oneOf('--search-objective', ['accuracy', 'snr']),
      'accuracy',
    )
    .addOption(flag('seed', { value: 0 }))
    .addOption(flag('batch', { value: 50 }))
    .addOption(flag('maxLength', { value: 128 }))
    .action(async (o: ClipFormerFlags) => {
      const t0 = performance.now();
      const models = [
        { name: 'standard' as const, dir: portablePath(o.model) },
        ...(o.vat ? [{ name: 'vat' as const, dir: portablePath(o.vat) }] : []),
      ].map((m) => ({ ...m, model: loadModel(m.dir) }));
      const first = models[0]!;
      // data are opened once for the first model; a VAT model shares its preprocessing
      const data = openData(o.data, first.model, {
        modelDir: first.dir,
        maxLength: o.maxLength,
      });
      if (data.size < o.calibration + 1)
        throw new InputError(`--calibration ${o.calibration}: ${data.name} has only ${data.size} examples`);
      const e = await runClipFormerExperiment({
        models,
        data,
        dataSpec: recorded.data(o.data),
        hw: recorded.hw(o.hw),
        out: portablePath(o.out),
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
    .addOption(flag('model', { help: 'the model as trained (Hugging Face folder)', required: true }))
    .option('--hwa <dir>', 'its hardware-aware-trained twin, a second row')
    .option(
      '--learned <dir>',
      "a twin trained with learned input ranges and conductance scales (xbar train --hwa with 'learned' ranges), a third row",
    )
    .addOption(flag('data', { help: 'labelled data, KIND:PATH', value: shipped('glue-sst2', 'sst2-demo') }))
    .addOption(flag('hw', { value: 'pcm-lammie' }))
    .addOption(
      flag('out', { help: 'output folder (results.json, results.md, pto.svg/png)', value: 'runs/pto' }),
    )
    .addOption(flag('repeats', { help: 'instances per cell of the 1 h table', value: 10 }))
    .option('--time-repeats <n>', 'instances per cell of the time sweep', wholeNumber('--time-repeats'), 3)
    .option(
      '--calibration <n>',
      'examples held out (the last of the data) to calibrate on',
      wholeNumber('--calibration'),
      64,
    )
    .option(
      '--percentile <k>',
      'K: the percentile of |x| that sets a tile’s range',
      finiteNumber('--percentile', { gt: 0, max: 100 }),
      99.99,
    )
    .option(
      '--sigmas <L>',
      'L: a column shrinks where μ + L·σ of its current exceeds the ADC saturation',
      finiteNumber('--sigmas', { min: 0 }),
      3,
    )
    .addOption(flag('limit', { help: 'examples scored per instance', value: 808 }))
    .addOption(flag('seed', { value: 0 }))
    .addOption(flag('batch', { value: 64 }))
    .addOption(flag('maxLength', { value: 128 }))
    .action(
      async (o: {
        model: string;
        hwa?: string;
        learned?: string;
        data: DataFlag;
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
        const t0 = performance.now();
        const models = [
          { name: 'as trained', dir: portablePath(o.model) },
          ...(o.hwa ? [{ name: 'HWA-trained', dir: portablePath(o.hwa) }] : []),
          ...(o.learned
            ? [{ name: 'HWA-trained, ranges learned', dir: portablePath(o.learned), learned: true }]
            : []),
        ].map((m) => {
          const model = loadModel(m.dir);
          const data = openData(o.data, model, { modelDir: m.dir, maxLength: o.maxLength });
          if (data.size < o.calibration + 1)
            throw new InputError(
              `--calibration ${o.calibration}: ${data.name} has only ${data.size} examples`,
            );
          return { ...m, model, data };
        });
        const e = await runPtoExperiment({
          models,
          dataSpec: recorded.data(o.data),
          hw: recorded.hw(o.hw),
          out: portablePath(o.out),
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
