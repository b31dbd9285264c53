/**
 * The predictor runs batches whose graph would hold too large a tensor in pieces, with the same
 * logits, and embeds params where their values are fixed for its life.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec } from '../../src/analog/presets.js';
import { Predictor } from '../../src/eval/predict.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import { Rng } from '../../src/util/math.js';
import { vitMnist } from '../helpers/models.js';

/** A small random ViT and n Gaussian images for it. */
function withImages(modelSeed: number, n: number, imageSeed: number) {
  const { model } = vitMnist(modelSeed);
  const c = model.config as { channels: number; imageSize: number };
  const shape = [n, c.channels, c.imageSize, c.imageSize];
  const data = new Rng(imageSeed).fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)));
  return { model, x: { pixel_values: hostArray('float32', shape, data) } };
}

/** Logits b equal a + shift, to float precision. */
function assertLogits(a: HostArray, b: HostArray, shift: number, what: string): void {
  assert.deepEqual(b.shape, a.shape, what);
  const [p, q] = [a.data as Float32Array, b.data as Float32Array];
  for (let i = 0; i < p.length; i++)
    assert.ok(Math.abs(p[i]! + shift - q[i]!) <= 1e-5 * (1 + Math.abs(q[i]!)), `${what}: logit ${i}`);
}

describe('Predictor pieces', () => {
  it('a batch split by maxTensorBytes gives the logits of the whole batch, in order', async () => {
    const { model, x } = withImages(4, 7, 1);
    const whole = await new Predictor(model, { maxTensorBytes: 2 ** 40 }).logits(x);
    // one byte: every example is its own piece
    const pieces = await new Predictor(model, { maxTensorBytes: 1 }).logits(x);
    assertLogits(whole, pieces, 0, 'pieces against the whole batch');
  });
});

describe('Predictor params', () => {
  it('a fresh analog predictor embeds the params: the fed logits, later changes unseen until release()', async () => {
    const { model, x } = withImages(5, 3, 2);
    // crossbar products with nothing random per run: both predictors compute the same function
    const matmuls = new AnalogModel(loadSpec('ideal'), 0).matmuls();
    const fed = new Predictor(model, { matmuls, fresh: true, bakeParams: false });
    const baked = new Predictor(model, { matmuls, fresh: true });
    const before = await fed.logits(x);
    assertLogits(before, await baked.logits(x), 0, 'baked against fed');
    const bias = model.params().find((t) => (t.attrs as { name: string }).name.endsWith('classifier.bias'));
    assert.ok(bias, 'the classifier has a bias param');
    const values = (bias.attrs as { value: HostArray }).value.data as Float32Array;
    const saved = values.slice();
    values.forEach((v, i) => {
      values[i] = v + 1;
    });
    try {
      assertLogits(before, await fed.logits(x), 1, 'fed sees the change');
      assertLogits(before, await baked.logits(x), 0, 'baked keeps its values');
      await baked.release();
      assertLogits(before, await baked.logits(x), 1, 'recompiled after release');
      await baked.release();
    } finally {
      values.set(saved);
      await fed.release();
    }
  });
});

describe('Predictor noise', () => {
  it('gives sample i of a batch of 8 the logits it gets alone at batch 1 (noise keyed by sample)', async () => {
    const { model, x } = withImages(6, 8, 3);
    const data = x.pixel_values.data as Float32Array;
    const per = data.length / 8;
    for (const preset of ['rram-clipformer', 'pcm-aihwkit']) {
      const predictor = new Predictor(model, { matmuls: new AnalogModel(loadSpec(preset), 1).matmuls() });
      const batch = await predictor.logits(x, 100);
      const labels = batch.shape[1]!;
      for (const i of [0, 3, 7]) {
        const one = {
          pixel_values: hostArray(
            'float32',
            [1, ...x.pixel_values.shape.slice(1)],
            data.slice(i * per, (i + 1) * per),
          ),
        };
        const alone = await predictor.logits(one, 100 + i);
        const row = {
          ...batch,
          shape: [1, labels],
          data: (batch.data as Float32Array).slice(i * labels, (i + 1) * labels),
        };
        assertLogits(row, alone, 0, `${preset}: sample ${100 + i}`);
      }
      // the noise is drawn: another first sample gives other logits
      const moved = await predictor.logits(x, 0);
      assert.notDeepEqual(moved.data, batch.data, `${preset}: noise follows the sample index`);
    }
  });
});
