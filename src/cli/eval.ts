/** `xbar eval`: a model's metric on a data set. */
import type { Command } from 'commander';
import { analogInstances } from '../analog/instances.js';
import { loadSpec } from '../analog/presets.js';
import { noCostReason } from '../cost/mapping.js';
import { costJson, totalsRows } from '../cost/report.js';
import { openData, type Split } from '../eval/data.js';
import { EVAL_BATCH, evaluate } from '../eval/evaluate.js';
import { monteCarlo } from '../eval/montecarlo.js';
import { type ClipFormerConfig, costBeta, parseClipFormerFlag } from '../methods/clipformer.js';
import { prepareInstances } from '../methods/prepare.js';
import { modelCost } from '../methods/trex/cost.js';
import { loadModel } from '../models/index.js';
import { progress } from '../util/progress.js';
import { table } from '../util/table.js';
import {
  type DataFlag,
  type Duration,
  dataFlag,
  flag,
  hardwareSets,
  opt,
  providerOf,
  withOptions,
} from './flags.js';

interface EvalFlags {
  hw?: string;
  calibration?: DataFlag;
  set: string[];
  repeats: number;
  seed: number;
  time?: Duration;
  model: string;
  data: DataFlag;
  split?: Split;
  limit?: number;
  batch: number;
  maxLength: number;
  json?: boolean;
  clipformer?: ClipFormerConfig;
  provider: 'cpu' | 'webgpu' | 'auto';
  gpu?: string;
}

export function registerEval(program: Command): void {
  withOptions(
    program.command('eval').description("a model's metric on a data set"),
    flag('model', { required: true }),
    flag('data', { required: true }),
    flag('split', { help: 'test | dev | train (default: test for images, dev for GLUE)' }),
    flag('limit', { help: 'evaluate the first n examples' }),
    flag('batch', { value: EVAL_BATCH }),
    flag('maxLength', { value: 128 }),
    flag('hw', { help: 'evaluate on hardware: a preset (xbar hw list) or a YAML/JSON spec file' }),
    flag('set'),
    flag('repeats', { value: 10 }),
    flag('seed', { value: 0 }),
    flag('time'),
    opt('--calibration <spec>', 'KIND:PATH whose training split calibrates (default: --data)', dataFlag),
    opt('--clipformer <α,β>', 'ClipFormer on K/V crossbars, e.g. 2,0.25 (α ≥ 1, β in (0, 1])', (v: string) =>
      parseClipFormerFlag(v),
    ),
    flag('provider', { value: 'cpu' }),
    flag('gpu'),
    flag('json'),
  ).action(async (o: EvalFlags) => {
    const provider = await providerOf(o);
    const model = loadModel(o.model);
    const data = openData(o.data, model, {
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
      const hw = loadSpec(o.hw, hardwareSets(o), model);
      // opened only when a layer asks for calibrated ranges
      const calib = () =>
        openData(o.calibration ?? o.data, model, {
          modelDir: o.model,
          maxLength: o.maxLength,
          split: 'train',
        });
      const note = (m: string) => o.json || console.error(m);
      const ranges = await prepareInstances(model, o.model, hw, {
        calibration: calib,
        clipformer: o.clipformer,
        note,
      });
      const bar = progress('instances', o.repeats, { quiet: !!o.json });
      const instance = analogInstances(model, hw, ranges);
      const r = await monteCarlo(model, data, instance, {
        repeats: o.repeats,
        seed: o.seed,
        batch: o.batch,
        provider,
        onInstance: () => bar.tick(),
      });
      bar.stop();
      // what the same model costs on this hardware (shapes only)
      // with its reuse / sharing / pruning, if any, and ClipFormer's K/V slice saving
      const noCost = noCostReason(hw);
      const c = noCost
        ? null
        : modelCost(model.config, hw, o.clipformer ? { extra: { beta: costBeta(o.clipformer) } } : {});
      const { name, timeS } = hw.spec;
      if (o.json) {
        const clipformer = o.clipformer ? { clipformer: o.clipformer } : {};
        console.log(JSON.stringify({ ...r, hw: name, timeS, ...clipformer, cost: c ? costJson(c) : null }));
        return;
      }
      const f = (v: number) => v.toFixed(4);
      console.log(
        table([
          ...head,
          ['hardware', `${name}${timeS ? ` at t = ${o.time?.text ?? `${timeS} s`}` : ''}`],
          ...(o.clipformer ? [['ClipFormer', `α ${o.clipformer.alpha}, β ${o.clipformer.beta}`]] : []),
          ['metric', r.metric],
          ['ideal', f(r.ideal)],
          [
            'analog',
            `${f(r.mean)} ± ${f(r.std)} (${r.repeats} instances, seeds ${r.seeds[0]}..${r.seeds.at(-1)})`,
          ],
          ...(c
            ? totalsRows(c).map((row) => [row[0]!, `${row[1]} ${row[2] ?? ''}`.trim()])
            : [['cost', `none: ${noCost}`]]),
          ['time', `${r.seconds.toFixed(1)} s`],
        ]),
      );
      return;
    }
    const r = await evaluate(model, data, { batch: o.batch, provider, ...(o.json ? {} : { label: 'eval' }) });
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
