/** The models and data the project ships load and score as their model cards say. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { learnedRangesFor } from '../../src/analog/learned-ranges.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { loadModel } from '../../src/models/index.js';
import { ROOT } from '../helpers/models.js';

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

describe('xbar demo', () => {
  it('prints ideal, PCM and RRAM rows with accuracy and cost', async () => {
    const { execFileSync } = await import('node:child_process');
    const out = execFileSync(process.execPath, [join(ROOT, 'bin/xbar.js'), 'demo', '--repeats', '1'], {
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
