/** `xbar eval`: a model's metric on a data set. */
import type { Command } from 'commander';
import { learnedRangesFor } from '../analog/learned-ranges.js';
import { monteCarlo } from '../analog/montecarlo.js';
import { loadSpec } from '../analog/presets.js';
import { costJson, totalsRows } from '../cost/report.js';
import { openData, parseDataSpec, type Split } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { InputError } from '../eval/predict.js';
import {
  type ClipFormerConfig,
  checkWindow,
  costBeta,
  kvTransformFor,
  parseClipFormerFlag,
} from '../methods/clipformer.js';
import { calibrateConductanceRanges, calibrateInputRanges } from '../methods/pto.js';
import { modelCost } from '../methods/trex/cost.js';
import { loadModel } from '../models/index.js';
import { progress } from '../util/progress.js';
import { table } from '../util/table.js';
import { parseDuration } from '../util/validate.js';

export const positiveInt =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InputError(`${flag} ${v}: expected a whole number ≥ 1`);
    return n;
  };

interface EvalFlags {
  hw?: string;
  calibration?: string;
  set: string[];
  repeats: number;
  seed: number;
  time?: string;
  model: string;
  data: string;
  split?: Split;
  limit?: number;
  batch: number;
  maxLength: number;
  json?: boolean;
  clipformer?: ClipFormerConfig;
}

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description("a model's metric on a data set")
    .requiredOption('--model <dir>', 'Hugging Face model folder')
    .requiredOption(
      '--data <spec>',
      'KIND:PATH, e.g. fashion-mnist:/usr/share/datasets/fashion-mnist, glue-sst2:DIR, imagefolder:DIR',
    )
    .option('--split <split>', 'test | dev | train (default: test for images, dev for GLUE)', (v: string) => {
      if (!['test', 'dev', 'train'].includes(v)) throw new InputError(`--split ${v}: use test, dev or train`);
      return v;
    })
    .option('--limit <n>', 'evaluate the first n examples', positiveInt('--limit'))
    .option('--batch <n>', 'batch size', positiveInt('--batch'), 32)
    .option('--max-length <n>', 'token limit for text', positiveInt('--max-length'), 128)
    .option('--hw <spec>', 'evaluate on hardware: a preset (xbar hw list) or a YAML/JSON spec file')
    .option(
      '--set <field=value>',
      'override a hardware field, e.g. adc.bits=6 (repeatable)',
      (v: string, p: string[]) => [...p, v],
      [],
    )
    .option(
      '--repeats <n>',
      'Monte Carlo instances (programmings of the weights)',
      positiveInt('--repeats'),
      10,
    )
    .option(
      '--seed <n>',
      'base seed: instance i uses seed + i',
      (v: string) => {
        const n = Number(v);
        if (!Number.isInteger(n) || n < 0) throw new InputError(`--seed ${v}: expected a whole number ≥ 0`);
        return n;
      },
      0,
    )
    .option('--time <t>', 'time since programming (drift), e.g. 1s, 1h, 1d, 1y')
    .option(
      '--calibration <spec>',
      "data for calibrated ranges (dac.range.kind=calibrated), KIND:PATH; default: --data's training split",
    )
    .option(
      '--clipformer <α,β>',
      'ClipFormer on K/V crossbars, e.g. 2,0.25 (α ≥ 1, 0 < β ≤ 1); β < 1 saves K/V bit slices in the cost',
      (v: string) => parseClipFormerFlag(v),
    )
    .option('--json', 'print a JSON object instead of a table')
    .action(async (o: EvalFlags) => {
      const model = loadModel(o.model);
      const data = openData(parseDataSpec(o.data), model, {
        modelDir: o.model,
        maxLength: o.maxLength,
        ...(o.split ? { split: o.split } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
      });
      const params = model.params().reduce((s, p) => s + p.size, 0);
      const head = [
        ['model', `${o.model} (${model.config.modelType}, ${(params / 1e6).toFixed(2)} M parameters)`],
        ['data', data.name],
      ];
      if (o.hw) {
        const sets = o.time === undefined ? o.set : [...o.set, `timeS=${parseDuration(o.time)}`];
        const hw = loadSpec(o.hw, sets, model);
        // opened only when a layer asks for calibrated ranges
        const calib = () =>
          openData(parseDataSpec(o.calibration ?? o.data), model, {
            modelDir: o.model,
            maxLength: o.maxLength,
            split: 'train',
          });
        const note = (m: string) => {
          if (!o.json) console.error(m);
        };
        // ranges learned in hardware-aware training (analog_ranges.safetensors), then post-training ones
        const learned = learnedRangesFor(o.model, model, hw);
        const inputRanges = new Map([
          ...learned.inputRanges,
          ...(await calibrateInputRanges(model, calib, hw, note)),
        ]);
        const columnScales = new Map([
          ...learned.columnScales,
          ...(await calibrateConductanceRanges(model, calib, hw, inputRanges, note)),
        ]);
        const attn = hw.attention;
        if (o.clipformer) {
          if (!attn)
            throw new InputError(
              `--clipformer: ${hw.spec.name} runs attention digitally; nothing to transform`,
            );
          checkWindow(o.clipformer, attn, '--clipformer');
        }
        const bar = progress('instances', o.repeats, { quiet: !!o.json });
        const r = await monteCarlo(model, data, hw, {
          repeats: o.repeats,
          seed: o.seed,
          batch: o.batch,
          inputRanges,
          columnScales,
          ...(o.clipformer ? { kvTransform: kvTransformFor(o.clipformer) } : {}),
          onInstance: () => bar.tick(),
        });
        bar.stop();
        // what the same model costs on this hardware (shapes only)
        // with its reuse / sharing / pruning, if any, and ClipFormer's K/V slice saving
        const c = modelCost(
          model.config,
          hw,
          o.clipformer ? { extra: { beta: costBeta(o.clipformer) } } : {},
        );
        if (o.json) {
          console.log(
            JSON.stringify({
              ...r,
              ...(o.clipformer ? { clipformer: o.clipformer } : {}),
              cost: costJson(c),
            }),
          );
          return;
        }
        const f = (v: number) => v.toFixed(4);
        console.log(
          table([
            ...head,
            [
              'hardware',
              `${hw.spec.name}${hw.spec.timeS ? ` at t = ${o.time ?? `${hw.spec.timeS} s`}` : ''}`,
            ],
            ...(o.clipformer ? [['ClipFormer', `α ${o.clipformer.alpha}, β ${o.clipformer.beta}`]] : []),
            ['metric', r.metric],
            ['ideal', f(r.ideal)],
            [
              'analog',
              `${f(r.mean)} ± ${f(r.std)} (${r.repeats} instances, seeds ${r.seeds[0]}..${r.seeds.at(-1)})`,
            ],
            ...totalsRows(c).map((row) => [row[0]!, `${row[1]} ${row[2] ?? ''}`.trim()]),
            ['time', `${r.seconds.toFixed(1)} s`],
          ]),
        );
        return;
      }
      const r = await evaluate(model, data, { batch: o.batch, ...(o.json ? {} : { label: 'eval' }) });
      if (o.json) {
        const { predictions: _, ...rest } = r;
        console.log(JSON.stringify(rest));
        return;
      }
      console.log(
        table([
          ...head,
          ...Object.entries(r.metrics).map(([k, v]) => [k, v!.toFixed(4)]),
          ['time', `${r.seconds.toFixed(1)} s (${(r.n / r.seconds).toFixed(0)} examples/s)`],
        ]),
      );
    });
}
