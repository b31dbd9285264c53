/** The training loop: learning, checkpoints, resume, and the errors that keep the last good checkpoint. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { hostArray, toNumbers } from '../../src/graph/ndarray.js';
import { loadModel, parseModelConfig, randomModel } from '../../src/models/index.js';
import { augmentImages, clipGlobalNorm, train } from '../../src/train/loop.js';
import { learningRate } from '../../src/train/schedule.js';
import { Rng } from '../../src/util/math.js';
import { FIXTURES, vitMnist } from '../helpers/models.js';

const MNIST = `mnist:${join(FIXTURES, 'mnist')}`;
const quiet = { quiet: true, log: () => {} };

describe('train', () => {
  it('learns MNIST digits, checkpoints every epoch in HF form, and resumes', async () => {
    const cfg = {
      model_type: 'vit',
      hidden_size: 32,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 64,
      image_size: 28,
      patch_size: 7,
      num_channels: 1,
      num_labels: 10,
    };
    const model = randomModel(parseModelConfig(cfg, 'test'), 7, 0.02);
    const data = openData(parseDataSpec(MNIST), model, { split: 'train', limit: 1024 });
    const test = openData(parseDataSpec(MNIST), model, { limit: 300 });
    const out = mkdtempSync(join(tmpdir(), 'xbar-train-'));
    const opts = { batch: 16, lr: 2e-3, out, evalData: test, seed: 1, ...quiet };
    const first = await train(model, data, { ...opts, epochs: 2 });
    assert.equal(first.history.length, 2);
    assert.ok(first.history[1]!.loss < first.history[0]!.loss, JSON.stringify(first.history));
    // 300 test digits: chance is 0.1 with sd 0.017, so 0.25 is 9 sd above it (128 steps reach ~0.33)
    assert.ok(first.history[1]!.metric! > 0.25, `accuracy ${first.history[1]!.metric} after 2 epochs`);
    for (const f of ['config.json', 'model.safetensors', 'optimizer.safetensors', 'trainer_state.json'])
      assert.ok(existsSync(join(out, f)), f);
    // the checkpoint is a loadable model; training resumes from it at epoch 3 with the same step count
    const again = loadModel(out);
    const resumed = await train(
      again,
      openData(parseDataSpec(MNIST), again, { split: 'train', limit: 1024 }),
      { ...opts, epochs: 3 },
    );
    assert.deepEqual(resumed.history.slice(0, 2), first.history);
    assert.equal(resumed.history.length, 3);
    assert.equal(resumed.step, 3 * 64);
  });

  it('refuses to resume from a checkpoint of another model', async () => {
    const a = vitMnist(1);
    const out = mkdtempSync(join(tmpdir(), 'xbar-train-'));
    const data = openData(parseDataSpec(MNIST), a.model, { modelDir: a.dir, split: 'train', limit: 64 });
    await train(a.model, data, { epochs: 1, batch: 32, lr: 1e-3, out, ...quiet });
    const { savedModel } = await import('../helpers/models.js');
    const b = savedModel({
      model_type: 'vit',
      hidden_size: 8,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 16,
      image_size: 28,
      patch_size: 7,
      num_channels: 1,
      num_labels: 10,
    });
    const dataB = openData(parseDataSpec(MNIST), b.model, { modelDir: b.dir, split: 'train', limit: 64 });
    await assert.rejects(
      train(b.model, dataB, { epochs: 2, batch: 32, lr: 1e-3, out, ...quiet }),
      /belongs to another model/,
    );
  });

  it('stops on a NaN loss, naming the epoch and keeping the last good checkpoint', async () => {
    const { model, dir } = vitMnist(2);
    const out = mkdtempSync(join(tmpdir(), 'xbar-train-'));
    const data = openData(parseDataSpec(MNIST), model, { modelDir: dir, split: 'train', limit: 64 });
    await train(model, data, { epochs: 1, batch: 32, lr: 1e-3, out, ...quiet });
    const before = readFileSync(join(out, 'model.safetensors'));
    await assert.rejects(
      train(model, data, { epochs: 3, batch: 32, lr: 1e30, clipNorm: 0, out, ...quiet }),
      /loss became (NaN|Infinity|-Infinity) at epoch \d, step \d+; the last good checkpoint \(epoch \d\) is in/,
    );
    assert.ok(existsSync(join(out, 'trainer_state.json')));
    assert.ok(readFileSync(join(out, 'model.safetensors')).length === before.length);
  });
});

describe('pieces', () => {
  it('warm-up then cosine or linear decay', () => {
    const s = { kind: 'cosine' as const, lr: 1, warmupSteps: 10, totalSteps: 110 };
    assert.equal(learningRate(s, 0), 0.1);
    assert.equal(learningRate(s, 9), 1);
    assert.ok(Math.abs(learningRate(s, 60) - 0.5) < 1e-12);
    assert.ok(learningRate(s, 110) < 1e-12);
    assert.ok(Math.abs(learningRate({ ...s, kind: 'linear' }, 35) - 0.75) < 1e-12);
  });

  it('clips the global norm', () => {
    const g = [
      hostArray('float32', [2], Float32Array.of(3, 0)),
      hostArray('float32', [1], Float32Array.of(4)),
    ];
    assert.equal(clipGlobalNorm(g, 1), 5);
    assert.deepEqual(
      g.flatMap((x) => toNumbers(x)).map((v) => Math.round(v * 1e6) / 1e6),
      [0.6, 0, 0.8],
    );
  });

  it('shifts and flips images, filling with the background', () => {
    const x = hostArray('float32', [1, 1, 1, 4], Float32Array.of(0, 1, 2, 3));
    // find a seed whose draw is a pure flip with no shift
    for (let seed = 0; seed < 50; seed++) {
      const y = hostArray('float32', [1, 1, 1, 4], Float32Array.from(x.data as Float32Array));
      augmentImages(y, { shift: 0, flip: true }, new Rng(seed));
      const v = toNumbers(y);
      assert.ok(JSON.stringify(v) === '[0,1,2,3]' || JSON.stringify(v) === '[3,2,1,0]', JSON.stringify(v));
    }
    const z = hostArray('float32', [1, 1, 1, 4], Float32Array.of(5, 6, 7, 8));
    augmentImages(z, { shift: 1, flip: false }, new Rng(3));
    const v = toNumbers(z);
    assert.ok(
      [
        [5, 6, 7, 8],
        [5, 5, 6, 7],
        [6, 7, 8, 5],
      ].some((w) => JSON.stringify(w) === JSON.stringify(v)),
      JSON.stringify(v),
    );
  });
});
