#!/usr/bin/env node
/**
 * Hashes the numbers xbar computes, so that a change meant to keep them (a refactor) can be
 * checked bit for bit: logits of both shipped models on every preset (and with drift,
 * calibrated and learned ranges, ClipFormer), Monte Carlo results, single-layer MVMs and cost
 * reports. Run on the built tree (`npm run build` first), before and after the change, on the
 * same machine, with the same kernels (XBAR_NATIVE=0 for the ONNX graphs). A few steps of
 * noise-aware training run on the MNIST fixture's training split, or on XBAR_HASH_TRAIN_DATA=KIND:PATH:
 *
 *   node scripts/number-hashes.mjs > before.json   # … change, rebuild …
 *   node scripts/number-hashes.mjs > after.json && diff before.json after.json
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const lib = (p) => import(join(ROOT, 'dist/src', p));
const { AnalogModel } = await lib('analog/analog-model.js');
const { monteCarlo } = await lib('eval/montecarlo.js');
const { analogInstances } = await lib('analog/instances.js');
const { loadSpec: load, PRESET_NAMES } = await lib('analog/presets.js');
const { openData, parseDataSpec, sliceData } = await lib('eval/data.js');
const { Predictor } = await lib('eval/predict.js');
const { loadModel } = await lib('models/index.js');
const { kvTransformFor } = await lib('methods/clipformer.js');
const { calibrateInputRanges, calibrateConductanceRanges } = await lib('methods/pto.js');
const { learnedRangesFor } = await lib('analog/learned-ranges.js');

const sha = (bytes) => createHash('sha256').update(bytes).digest('hex').slice(0, 16);
const out = {};
const N = 16;

const MODELS = [
  { name: 'vit-fmnist', data: 'fashion-mnist:data/fashion-mnist-demo' },
  { name: 'bert-sst2', data: 'glue-sst2:data/sst2-demo' },
];

/** Logits of the first N examples on one programmed instance. */
async function logits(model, data, spec, seed, opts = {}) {
  const analog = new AnalogModel(spec, seed, opts.kvTransform);
  if (opts.inputRanges) analog.setInputRanges(opts.inputRanges);
  if (opts.columnScales) analog.setColumnScales(opts.columnScales);
  await analog.prepare(model);
  const p = new Predictor(model, { matmuls: analog.matmuls(), fresh: true });
  const y = await p.logits(data.inputs(0, Math.min(N, data.size)));
  await p.release();
  return sha(new Uint8Array(y.data.buffer, y.data.byteOffset, y.data.byteLength));
}

for (const m of MODELS) {
  const dir = join(ROOT, 'models', m.name);
  const model = loadModel(dir);
  const loadSpec = (hw, sets = []) => load(hw, sets, model);
  const spec = parseDataSpec(m.data.replace(':', `:${ROOT}`));
  const data = openData(spec, model, { modelDir: dir, limit: 64 });
  const first = sliceData(data, 0, N);
  for (const preset of PRESET_NAMES) {
    out[`${m.name} ${preset} logits`] = await logits(model, first, loadSpec(preset), 3);
    process.stderr.write(`${m.name} ${preset}\n`);
  }
  out[`${m.name} pcm-aihwkit t=1h logits`] = await logits(model, first, loadSpec('pcm-aihwkit', ['timeS=3600']), 3);
  out[`${m.name} rram-clipformer clipformer 2,0.25 logits`] = await logits(
    model,
    first,
    loadSpec('rram-clipformer'),
    3,
    { kvTransform: kvTransformFor({ alpha: 2, beta: 0.25, layers: 'all' }) },
  );
  const lammie = loadSpec('pcm-lammie', [
    'dac.range.kind=calibrated',
    'dac.range.percentile=99.99',
    'dac.range.samples=8',
    'timeS=3600',
  ]);
  const calib = () => sliceData(data, N, 64);
  const inputRanges = await calibrateInputRanges(model, calib, lammie, () => {});
  const columnScales = await calibrateConductanceRanges(model, calib, lammie, inputRanges, () => {});
  out[`${m.name} pcm-lammie calibrated logits`] = await logits(model, first, lammie, 3, {
    inputRanges,
    columnScales,
  });
  for (const preset of PRESET_NAMES) {
    const instance = analogInstances(model, loadSpec(preset));
    const r = await monteCarlo(model, sliceData(data, 0, 24), instance, { repeats: 2, seed: 11, batch: 8 });
    out[`${m.name} ${preset} monteCarlo`] = JSON.stringify([r.ideal, ...r.values]);
  }
}
{
  const dir = join(ROOT, 'models', 'bert-sst2-hwa-learned');
  const model = loadModel(dir);
  const data = openData(parseDataSpec(`glue-sst2:${ROOT}data/sst2-demo`), model, { modelDir: dir, limit: N });
  const spec = load('pcm-lammie', ['dac.range.kind=learned'], model);
  const learned = learnedRangesFor(dir, model, spec);
  out['bert-sst2-hwa-learned pcm-lammie learned logits'] = await logits(model, data, spec, 3, learned);
}

// the command line: single-layer MVMs and cost reports
const tmp = mkdtempSync(join(tmpdir(), 'xbar-hashes-'));
try {
  const xbar = (...args) => execFileSync(process.execPath, [join(ROOT, 'bin/xbar.js'), ...args], { encoding: 'utf8' });
  const w = Array.from({ length: 24 * 40 }, (_, i) => Math.sin(i * 0.37) * 0.3);
  const x = Array.from({ length: 5 }, (_, r) => Array.from({ length: 40 }, (_, j) => Math.cos((r + 1) * j * 0.11)));
  writeFileSync(join(tmp, 'w.json'), JSON.stringify({ weight: w }));
  writeFileSync(join(tmp, 'x.json'), JSON.stringify({ x }));
  const { writeSafetensors } = await lib('io/safetensors.js');
  writeSafetensors(join(tmp, 'w.safetensors'), {
    weight: { dtype: 'float32', shape: [24, 40], data: Float32Array.from(w) },
  });
  for (const preset of PRESET_NAMES) {
    out[`mvm ${preset}`] = sha(
      xbar('mvm', '--weights', join(tmp, 'w.safetensors'), '--inputs', join(tmp, 'x.json'), '--hw', preset, '--repeats', '2', '--seed', '5'),
    );
    if (preset === 'ideal') continue; // no cost numbers
    for (const model of ['deit-s', 'bert-base']) {
      out[`cost ${model} ${preset}`] = sha(xbar('cost', '--model', model, '--hw', preset, '--json'));
    }
  }
  out['cost deit-s fefet-trex reuse 5'] = sha(xbar('cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--reuse', '5', '--json'));
  out['cost deit-s rram-clipformer beta 0.25'] = sha(
    xbar('cost', '--model', 'deit-s', '--hw', 'rram-clipformer', '--beta', '0.25', '--layers', '--json'),
  );
  // noise-aware training (a few steps) on a data set with a train split
  {
    const train = process.env.XBAR_HASH_TRAIN_DATA ?? `mnist:${join(ROOT, 'test/fixtures/mnist')}`;
    const run = (model, out, ...extra) =>
      xbar('train', '--model', model, '--data', train, '--out', join(tmp, out), '--epochs', '1', '--limit', '64',
        '--eval-limit', '16', '--batch', '16', ...extra);
    run(join(ROOT, 'models/vit-fmnist'), 'vat', '--hwa', 'rram-clipformer', '--gamma', '2');
    run(join(ROOT, 'models/vit-fmnist'), 'hwa', '--hwa', 'pcm-lammie', '--set', 'program.kind=additive',
      '--set', 'program.sigma=0.06', '--set', 'drift.kind=none', '--set', 'dac.range.kind=learned',
      '--set', 'mapping.conductanceRange.kind=learned');
    for (const r of ['vat', 'hwa'])
      for (const f of ['model.safetensors', 'analog_ranges.safetensors'])
        if (existsSync(join(tmp, r, f))) out[`train ${r} ${f}`] = sha(readFileSync(join(tmp, r, f)));
  }
} finally {
  rmSync(tmp, { recursive: true, force: true });
}
console.log(JSON.stringify(out, null, 1));
