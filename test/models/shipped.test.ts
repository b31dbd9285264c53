/** The models and data the project ships load and score as their model cards say. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { learnedRangesFor } from '../../src/analog/learned-ranges.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { loadModel, loadModelConfig } from '../../src/models/index.js';
import type { VitConfig } from '../../src/models/vit.js';
import { ROOT } from '../helpers/models.js';

const XBAR = join(ROOT, 'bin/xbar.js');

/** A shipped BERT's accuracy on the 872 SST-2 dev sentences of the shipped slice. */
async function sst2Accuracy(name: string) {
  const dir = join(ROOT, 'models', name);
  const model = loadModel(dir);
  const data = openData(parseDataSpec(`glue-sst2:${join(ROOT, 'data/sst2-demo')}`), model, { modelDir: dir });
  assert.equal(data.size, 872);
  return { dir, model, value: (await evaluate(model, data, { batch: 128 })).value };
}

describe('shipped models', () => {
  it('vit-fmnist scores its card’s 90.7 % on the shipped demo slice', async () => {
    const dir = join(ROOT, 'models/vit-fmnist');
    const model = loadModel(dir);
    const data = openData(parseDataSpec(`fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`), model, {
      modelDir: dir,
    });
    assert.equal(data.size, 1000);
    const r = await evaluate(model, data, { batch: 250 });
    // 1,000 images: a change of one prediction moves accuracy by 0.001; allow float-order flips
    assert.ok(Math.abs(r.value - 0.907) <= 0.003, `accuracy ${r.value}`);
  });

  it('vit-fmnist-deits’s configuration has DeiT-S’s encoder and 197 tokens', () => {
    const c = loadModelConfig(join(ROOT, 'models/vit-fmnist-deits')) as VitConfig;
    assert.deepEqual(
      [c.hidden, c.layers, c.heads, c.ffn, (c.imageSize / c.patchSize) ** 2 + 1],
      [384, 12, 6, 1536, 197],
    );
  });

  const deitsWeights = join(ROOT, 'models/vit-fmnist-deits/model.safetensors');
  it('vit-fmnist-deits scores its card’s 89.30 % on the shipped demo slice', {
    skip:
      !existsSync(deitsWeights) &&
      'its weights are not in the repository; scripts/reference/train_vit_fmnist.py makes them (its card)',
  }, async () => {
    const dir = join(ROOT, 'models/vit-fmnist-deits');
    const model = loadModel(dir);
    const data = openData(parseDataSpec(`fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`), model, {
      modelDir: dir,
    });
    const r = await evaluate(model, data, { batch: 100 });
    // 1,000 images: a change of one prediction moves accuracy by 0.001; allow float-order flips
    assert.ok(Math.abs(r.value - 0.893) <= 0.003, `accuracy ${r.value}`);
  });

  it('bert-sst2 scores its card’s 82.34 % on the 872 SST-2 dev sentences (the shipped slice)', async () => {
    const { model, value } = await sst2Accuracy('bert-sst2');
    assert.ok(Math.abs(value - 718 / 872) <= 2 / 872, `accuracy ${value}`);
    const params = model.params().reduce((s, p) => s + p.size, 0);
    assert.ok(params * 4 <= 5e6, `${params} parameters exceed the 5 MB a shipped model may take`);
  });

  it('bert-sst2-hwa scores its card’s 80.96 % on the 872 SST-2 dev sentences', async () => {
    const r = await sst2Accuracy('bert-sst2-hwa');
    assert.ok(Math.abs(r.value - 706 / 872) <= 2 / 872, `accuracy ${r.value}`);
  });

  it('bert-sst2-hwa-learned scores its card’s 74.89 % and carries a learned range for every tile it maps', async () => {
    const { dir, model, value } = await sst2Accuracy('bert-sst2-hwa-learned');
    assert.ok(Math.abs(value - 653 / 872) <= 2 / 872, `accuracy ${value}`);
    const spec = loadSpec(join(ROOT, 'results/pto-saturating/hw.yaml'), [
      'dac.range.kind=learned',
      'mapping.conductanceRange.kind=learned',
    ]);
    const learned = learnedRangesFor(dir, model, spec);
    // 4 encoders × (Q, K, V, projection, FFN in, FFN out), each one 512-row tile
    assert.equal(learned.inputRanges.size, 24);
    assert.equal(learned.columnScales.size, 24);
    for (const r of learned.inputRanges.values()) assert.ok(r.length === 1 && r[0]! > 0);
    for (const e of learned.columnScales.values()) assert.ok(e.every((v) => v >= 0.01 && v <= 1));
  });
});

describe('the shipped demo data has training splits', () => {
  for (const [model, data, size] of [
    ['bert-sst2', 'glue-sst2:data/sst2-demo', '1000'],
    ['vit-fmnist', 'fashion-mnist:data/fashion-mnist-demo', '500'],
  ] as const) {
    it(`xbar eval calibrates ${model}'s input ranges on the training split of ${data}`, () => {
      const r = spawnSync(
        process.execPath,
        [
          XBAR,
          'eval',
          '--model',
          `models/${model}`,
          '--data',
          data,
          '--hw',
          'pcm-lammie',
          '--set',
          'dac.range.kind=calibrated',
          '--set',
          'dac.range.percentile=99.99',
          '--set',
          'dac.range.samples=16',
          '--repeats',
          '1',
          '--limit',
          '8',
        ],
        { cwd: ROOT, encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, new RegExp(`calibrated on the first 16 examples of \\S+ train \\(${size}\\)`));
      assert.match(r.stdout, /analog +\d\.\d{4} ± 0\.0000 \(1 instances/);
    });
  }

  it('xbar vocab cuts a vocabulary from the SST-2 demo training split', () => {
    const out = mkdtempSync(join(tmpdir(), 'xbar-vocab-'));
    const args = [
      'vocab',
      '--from',
      'models/bert-sst2',
      '--data',
      'glue-sst2:data/sst2-demo',
      '--size',
      '1000',
    ];
    const msg = execFileSync(process.execPath, [XBAR, ...args, '--out', out], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    assert.match(msg, /^1000 tokens → .* of the 1,000 training texts' tokens/);
    const tokens = readFileSync(join(out, 'vocab.txt'), 'utf8').trimEnd().split('\n');
    assert.equal(tokens.length, 1000);
    assert.deepEqual(tokens.slice(0, 3), ['[PAD]', '[UNK]', '[CLS]']);
  });
});

describe('xbar demo', () => {
  it('prints ideal, PCM and RRAM rows with accuracy and cost', () => {
    const out = execFileSync(process.execPath, [XBAR, 'demo', '--repeats', '1'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    assert.match(out, /ideal \(floating point\) +1000 +90\.7 %/);
    assert.match(out, /pcm-aihwkit \(t = 1h\) +1000 +\d+\.\d % ± 0\.0 \(ideal 90\.7 %\) +[\d.]+ µJ/);
    assert.match(out, /rram-clipformer +50 +\d+\.\d % ± 0\.0/);
    assert.match(out, /ideal \(floating point\) +872 +82\.3 %/);
    assert.match(out, /pcm-aihwkit \(t = 1h\) +872 +\d+\.\d % ± 0\.0 \(ideal 82\.3 %\)/);
    assert.match(out, /rram-clipformer +25 +\d+\.\d % ± 0\.0/);
  });
});
