/** The predictor runs batches whose graph would hold too large a tensor in pieces, with the same logits. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Predictor } from '../../src/eval/predict.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { Rng } from '../../src/util/math.js';
import { vitMnist } from '../helpers/models.js';

describe('Predictor pieces', () => {
  it('a batch split by maxTensorBytes gives the logits of the whole batch, in order', async () => {
    const { model } = vitMnist(4);
    const c = model.config as { channels: number; imageSize: number };
    const n = 7;
    const size = c.channels * c.imageSize * c.imageSize;
    const x = {
      pixel_values: hostArray(
        'float32',
        [n, c.channels, c.imageSize, c.imageSize],
        new Rng(1).fillNormal(new Float32Array(n * size)),
      ),
    };
    const whole = await new Predictor(model, { maxTensorBytes: 2 ** 40 }).logits(x);
    // one byte: every example is its own piece
    const pieces = await new Predictor(model, { maxTensorBytes: 1 }).logits(x);
    assert.deepEqual(pieces.shape, whole.shape);
    const a = whole.data as Float32Array;
    const b = pieces.data as Float32Array;
    for (let i = 0; i < a.length; i++)
      assert.ok(Math.abs(a[i]! - b[i]!) <= 1e-5 * (1 + Math.abs(a[i]!)), `logit ${i}`);
  });
});
