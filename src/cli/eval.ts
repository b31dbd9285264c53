/** `xbar eval`: a model's metric on a data set. */
import type { Command } from 'commander';
import { openData, parseDataSpec, type Split } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { InputError } from '../eval/predict.js';
import { loadModel } from '../models/index.js';
import { table } from '../util/table.js';

export const positiveInt =
  (flag: string) =>
  (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new InputError(`${flag} ${v}: expected a whole number ≥ 1`);
    return n;
  };

interface EvalFlags {
  model: string;
  data: string;
  split?: Split;
  limit?: number;
  batch: number;
  maxLength: number;
  json?: boolean;
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
    .option('--json', 'print a JSON object instead of a table')
    .action(async (o: EvalFlags) => {
      const model = loadModel(o.model);
      const data = openData(parseDataSpec(o.data), model, {
        modelDir: o.model,
        maxLength: o.maxLength,
        ...(o.split ? { split: o.split } : {}),
        ...(o.limit ? { limit: o.limit } : {}),
      });
      const r = await evaluate(model, data, { batch: o.batch, ...(o.json ? {} : { label: 'eval' }) });
      if (o.json) {
        const { predictions: _, ...rest } = r;
        console.log(JSON.stringify(rest));
        return;
      }
      const params = model.params().reduce((s, p) => s + p.size, 0);
      console.log(
        table([
          ['model', `${o.model} (${model.config.modelType}, ${(params / 1e6).toFixed(2)} M parameters)`],
          ['data', data.name],
          ...Object.entries(r.metrics).map(([k, v]) => [k, v!.toFixed(4)]),
          ['time', `${r.seconds.toFixed(1)} s (${(r.n / r.seconds).toFixed(0)} examples/s)`],
        ]),
      );
    });
}
