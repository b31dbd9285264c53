/**
 * `xbar demo`: the embedded default. The shipped ViT on the shipped Fashion-MNIST slice, ideal
 * and on two hardware presets, with accuracy (Monte Carlo mean ± std) and cost side by side.
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { analogInstances } from '../analog/instances.js';
import { loadSpec } from '../analog/presets.js';
import { cost } from '../cost/cost.js';
import { modelShape } from '../cost/shape.js';
import { openData, parseDataSpec } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { monteCarlo } from '../eval/montecarlo.js';
import { loadModel } from '../models/index.js';
import { table } from '../util/table.js';
import { duration, flag } from './flags.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

interface Row {
  hw: string;
  time?: string;
  /** How many examples (bit-serial presets are slow on CPU, so they see a part of the slice). */
  examples: number;
}

/** The shipped models, their shipped evaluation slices, and the presets each is shown on. */
const DEMOS: readonly { model: string; data: string; about: string; rows: readonly Row[] }[] = [
  {
    model: 'vit-fmnist',
    data: 'fashion-mnist:data/fashion-mnist-demo',
    about: 'Fashion-MNIST test images',
    rows: [
      { hw: 'pcm-aihwkit', time: '1h', examples: 1000 },
      { hw: 'rram-clipformer', examples: 50 },
    ],
  },
  {
    model: 'bert-sst2',
    data: 'glue-sst2:data/sst2-demo',
    about: 'SST-2 dev sentences',
    rows: [
      { hw: 'pcm-aihwkit', time: '1h', examples: 872 },
      { hw: 'rram-clipformer', examples: 25 },
    ],
  },
];

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'the shipped ViT and BERT on their shipped data slices: ideal, PCM and RRAM crossbars, with cost',
    )
    .addOption(flag('repeats', { help: 'Monte Carlo instances per preset', value: 3 }))
    .action(async (o: { repeats: number }) => {
      for (const d of DEMOS) await demo(d, o.repeats);
    });
}

async function demo(d: (typeof DEMOS)[number], repeats: number): Promise<void> {
  const dir = `${ROOT}models/${d.model}`;
  const model = loadModel(dir);
  const spec = parseDataSpec(d.data.replace(':', `:${ROOT}`));
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
  for (const r of d.rows) {
    process.stderr.write(`${d.model}: running ${r.hw} (${repeats} instances on ${r.examples} examples)…\n`);
    const hw = loadSpec(r.hw, r.time ? [`timeS=${duration(r.time).seconds}`] : [], model);
    const data = openData(spec, model, { modelDir: dir, limit: r.examples });
    const mc = await monteCarlo(model, data, analogInstances(model, hw), { repeats, seed: 0 });
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
  const params = model.params().reduce((s, p) => s + p.size, 0);
  console.log(
    `\n${d.model} (${params.toLocaleString('en')} parameters) on ${ideal.n} ${d.about}, accuracy over ${repeats} programming instances per preset\n`,
  );
  console.log(
    table(rows, ['hardware', 'examples', 'accuracy', 'energy/input', 'delay/input', 'area', 'time']),
  );
}
