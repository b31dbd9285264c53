/** The models and data the project ships load and score as their model cards say. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { loadModel } from '../../src/models/index.js';
import { ROOT } from '../helpers/models.js';

describe('shipped models', () => {
  it('vit-fmnist scores its card’s 87.5 % on the shipped demo slice', async () => {
    const dir = join(ROOT, 'models/vit-fmnist');
    const model = loadModel(dir);
    const data = openData(parseDataSpec(`fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`), model, {
      modelDir: dir,
    });
    assert.equal(data.size, 1000);
    const r = await evaluate(model, data, { batch: 250 });
    // 1,000 images: a change of one prediction moves accuracy by 0.001; allow float-order flips
    assert.ok(Math.abs(r.value - 0.875) <= 0.003, `accuracy ${r.value}`);
  });
});
