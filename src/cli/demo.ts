/**
 * `xbar demo`: the embedded default. The shipped ViT on the shipped Fashion-MNIST slice, ideal
 * and on two hardware presets, with accuracy (Monte Carlo mean ± std) and cost side by side.
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { monteCarlo } from '../analog/montecarlo.js';
import { loadSpec } from '../analog/presets.js';
import { cost } from '../cost/cost.js';
import { modelShape } from '../cost/shape.js';
import { openData, parseDataSpec } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { loadModel } from '../models/index.js';
import { table } from '../util/table.js';
import { parseDuration } from '../util/validate.js';
import { positiveInt } from './eval.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Preset, time since programming, and how many images (bit-serial presets are slow on CPU). */
const ROWS: readonly { hw: string; time?: string; images: number }[] = [
  { hw: 'pcm-aihwkit', time: '1h', images: 1000 },
  { hw: 'rram-clipformer', images: 100 },
];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the shipped ViT on the shipped Fashion-MNIST slice: ideal, PCM and RRAM crossbars, with cost',
    )
    .option('--repeats <n>', 'Monte Carlo instances per preset', positiveInt('--repeats'), 3)
    .action(async (o: { repeats: number }) => {
      const dir = `${ROOT}models/vit-fmnist`;
      const model = loadModel(dir);
      const spec = parseDataSpec(`fashion-mnist:${ROOT}data/fashion-mnist-demo`);
      const pct = (v: number) => `${(100 * v).toFixed(1)} %`;
      const ideal = await evaluate(model, openData(spec, model, { modelDir: dir }));
      const rows = [
        [
          'ideal (floating point)',
          String(ideal.n),
          pct(ideal.value),
          '',
          '',
          '',
          `${ideal.seconds.toFixed(1)} s`,
        ],
      ];
      for (const r of ROWS) {
        process.stderr.write(`running ${r.hw} (${o.repeats} instances on ${r.images} images)…\n`);
        const hw = loadSpec(r.hw, r.time ? [`timeS=${parseDuration(r.time)}`] : []);
        const data = openData(spec, model, { modelDir: dir, limit: r.images });
        const mc = await monteCarlo(model, data, hw, { repeats: o.repeats, seed: 0 });
        const c = cost(modelShape(model.config), hw).totals;
        rows.push([
          `${r.hw}${r.time ? ` (t = ${r.time})` : ''}`,
          String(mc.n),
          `${pct(mc.mean)} ± ${(100 * mc.std).toFixed(1)} (ideal ${pct(mc.ideal)})`,
          `${(c.energyMJ * 1e3).toFixed(2)} µJ`,
          `${(c.delayMs * 1e3).toFixed(0)} µs`,
          `${c.areaMm2.toFixed(1)} mm²`,
          `${mc.seconds.toFixed(1)} s`,
        ]);
      }
      console.log(
        `vit-fmnist (${model
          .params()
          .reduce((s, p) => s + p.size, 0)
          .toLocaleString(
            'en',
          )} parameters) on Fashion-MNIST, ${o.repeats} programming instances per preset\n`,
      );
      console.log(
        table(rows, ['hardware', 'images', 'accuracy', 'energy/image', 'delay/image', 'area', 'time']),
      );
    });
}
