/**
 * Peak memory (RSS) and time of real-size models with random weights, loaded from Hugging Face
 * folders as `xbar eval` loads them, each configuration in its own process so that its peak is
 * its own: BERT-large on SST-2 sentences, ideal and `pcm-aihwkit` (1 and 3 Monte Carlo
 * instances); RoBERTa-large and DeiT-B (Fashion-MNIST images at 224²) ideal and on
 * `pcm-aihwkit`; with --rram, `rram-clipformer` on DeiT-B (2 images, the native kernel and the
 * ONNX graphs), BERT-large and RoBERTa-large (1 sentence, the native kernel), whose cells are
 * programmed per run (bit-serial: minutes per example on two cores). The folders are written once into --dir
 * (1.3–1.4 GB each for the large models) and reused.
 *   node dist/bench/memory.js [--examples 8] [--dir DIR] [--rram]
 *   node dist/bench/memory.js --one MODEL [--hw PRESET] [--repeats 1]   (one configuration, JSON)
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analogInstances } from '../src/analog/instances.js';
import { loadSpec } from '../src/analog/presets.js';
import { openData } from '../src/eval/data.js';
import { evaluate } from '../src/eval/evaluate.js';
import { monteCarlo } from '../src/eval/montecarlo.js';
import { writeSafetensors } from '../src/io/safetensors.js';
import { loadModel, MODEL_SIZES, randomModel, toHfConfig } from '../src/models/index.js';
import { benchArgs, fmtRow } from './util.js';

const args = benchArgs(import.meta.url, {
  examples: { type: 'string', default: '8' },
  dir: { type: 'string', default: join(tmpdir(), 'xbar-bench-models') },
  one: { type: 'string' },
  make: { type: 'string' },
  hw: { type: 'string' },
  repeats: { type: 'string', default: '1' },
  /** Also DeiT-B on rram-clipformer, native and ONNX (2 images). */
  rram: { type: 'boolean', default: false },
});
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const VOCABS = join(ROOT, 'test/fixtures/vocab');
const examples = Number(args.examples);

/** Tokenizer files of each model's folder (the random weights need a real vocabulary's size). */
const TOKENIZERS: Record<string, string[]> = {
  'bert-large': ['bert-base-uncased/vocab.txt'],
  'roberta-large': ['roberta-base/vocab.json', 'roberta-base/merges.txt'],
  'deit-b': [],
};

/** Writes model `name` with random weights as a Hugging Face folder (in its own process: it holds the model ~3 times). */
function makeFolder(name: string): void {
  const dir = join(args.dir, name);
  mkdirSync(dir, { recursive: true });
  const model = randomModel(MODEL_SIZES[name]!, 1);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.config)));
  for (const f of TOKENIZERS[name]!) copyFileSync(join(VOCABS, f), join(dir, f.split('/')[1]!));
  writeSafetensors(join(dir, 'model.safetensors'), model.store.toHf());
}

/** One configuration: the model loaded, evaluated ideal or as a Monte Carlo run on `hw`; JSON. */
async function runOne(name: string, hw: string | undefined, repeats: number): Promise<void> {
  const t0 = performance.now();
  const dir = join(args.dir, name);
  const model = loadModel(dir);
  const image = model.input().kind === 'image';
  const data = openData(
    image
      ? { kind: 'fashion-mnist', path: join(ROOT, 'data/fashion-mnist-demo') }
      : { kind: 'glue-sst2', path: join(ROOT, 'data/sst2-demo') },
    model,
    { modelDir: dir, limit: examples },
  );
  const loaded = performance.now();
  let instances: number[] = [];
  let ideal: number;
  if (!hw) {
    ideal = (await evaluate(model, data, { batch: examples })).seconds;
  } else {
    // the ideal evaluation ends where the first instance starts
    const starts: number[] = [];
    const instance = analogInstances(model, loadSpec(hw, [], model));
    await monteCarlo(
      model,
      data,
      (seed) => {
        starts.push(performance.now());
        return instance(seed);
      },
      { repeats, seed: 0, batch: examples },
    );
    starts.push(performance.now());
    ideal = (starts[0]! - loaded) / 1e3;
    instances = starts.slice(1).map((t, i) => (t - starts[i]!) / 1e3);
  }
  const weightBytes = model.params().reduce((s, p) => s + p.size * 4, 0);
  console.log(
    JSON.stringify({
      model: name,
      hw: hw ?? 'ideal',
      repeats: hw ? repeats : 0,
      loadSeconds: (loaded - t0) / 1e3,
      idealSeconds: ideal,
      instanceSeconds: instances,
      weightGB: weightBytes / 1e9,
      peakGB: (process.resourceUsage().maxRSS * 1024) / 1e9,
    }),
  );
}

interface Result {
  model: string;
  hw: string;
  repeats: number;
  loadSeconds: number;
  idealSeconds: number;
  instanceSeconds: number[];
  weightGB: number;
  peakGB: number;
}

if (args.make) {
  makeFolder(args.make);
} else if (args.one) {
  await runOne(args.one, args.hw, Number(args.repeats));
} else {
  const self = fileURLToPath(import.meta.url);
  const child = (extra: string[], env: Record<string, string> = {}, n = examples) =>
    execFileSync(process.execPath, [self, '--dir', args.dir, '--examples', String(n), ...extra], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
      env: { ...process.env, ...env },
    });
  /** model, preset (none: ideal), instances, XBAR_NATIVE, examples */
  type Config = [string, string | undefined, number, string?, number?];
  const configs: Config[] = [
    ['bert-large', undefined, 0],
    ['bert-large', 'pcm-aihwkit', 1],
    ['bert-large', 'pcm-aihwkit', 3],
    ['roberta-large', undefined, 0],
    ['roberta-large', 'pcm-aihwkit', 1],
    ['deit-b', undefined, 0],
    ['deit-b', 'pcm-aihwkit', 1],
    ...(args.rram
      ? ([
          ['deit-b', 'rram-clipformer', 1, '1', 2],
          ['deit-b', 'rram-clipformer', 1, '0', 2],
          ['bert-large', 'rram-clipformer', 1, '1', 1],
          ['roberta-large', 'rram-clipformer', 1, '1', 1],
        ] as Config[])
      : []),
  ];
  console.log(`# peak memory: random real-size models from HF folders in ${args.dir}, ${examples} examples`);
  console.log(fmtRow('model', 'hardware', 'peak RSS', 'times (load; ideal; per instance) vs weights'));
  for (const [name, hw, repeats, native, n] of configs) {
    if (!existsSync(join(args.dir, name, 'model.safetensors'))) child(['--make', name]);
    const r = JSON.parse(
      child(
        ['--one', name, ...(hw ? ['--hw', hw, '--repeats', String(repeats)] : [])],
        native ? { XBAR_NATIVE: native } : {},
        n,
      )
        .trim()
        .split('\n')
        .pop()!,
    ) as Result;
    const instances = r.instanceSeconds.map((s) => `${s.toFixed(1)} s`).join(', ');
    console.log(
      fmtRow(
        name,
        hw ? `${hw} ×${repeats}${native ? (native === '0' ? ' ONNX' : ' native') : ''}` : 'ideal',
        `${r.peakGB.toFixed(2)} GB`,
        `load ${r.loadSeconds.toFixed(1)} s; ideal ${r.idealSeconds.toFixed(1)} s${instances ? `; instances ${instances}` : ''}; ` +
          `peak ${(r.peakGB / r.weightGB).toFixed(2)}× the ${r.weightGB.toFixed(2)} GB of weights ${r.peakGB < 4 ? 'ok (< 4 GB)' : 'HIGH (target < 4 GB)'}`,
      ),
    );
  }
}
