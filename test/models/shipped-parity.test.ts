/**
 * The shipped models in transformers: scripts/reference/shipped.py loaded each with
 * transformers and recorded its token ids and logits on the first examples of the shipped
 * slices (test/fixtures/shipped). xbar must tokenize and predict the same.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { predictLogits } from '../../src/eval/predict.js';
import { loadModel } from '../../src/models/index.js';
import { ROOT } from '../helpers/models.js';

interface Reference {
  logits: number[][];
  input_ids?: number[][];
  transformers: string;
}

const SLICES: Record<string, string> = {
  'vit-fmnist': 'fashion-mnist:data/fashion-mnist-demo',
  'bert-sst2': 'glue-sst2:data/sst2-demo',
};

describe('shipped models match transformers', () => {
  for (const [name, slice] of Object.entries(SLICES)) {
    const file = join(ROOT, 'test/fixtures/shipped', `${name}.json`);
    it(name, async () => {
      const ref = JSON.parse(readFileSync(file, 'utf8')) as Reference;
      const dir = join(ROOT, 'models', name);
      const model = loadModel(dir);
      const n = ref.logits.length;
      const data = openData(parseDataSpec(slice.replace(':', `:${ROOT}`)), model, {
        modelDir: dir,
        maxLength: 64,
      });
      const inputs = data.inputs(0, n);
      if (ref.input_ids) {
        // transformers pads to the longest row, xbar to a multiple of 16: compare the unpadded ids
        const ids = inputs.input_ids!;
        const t = ids.shape[1]!;
        ref.input_ids.forEach((row, i) => {
          const mine = Array.from(ids.data.subarray(i * t, (i + 1) * t) as Int32Array).filter((v) => v !== 0);
          assert.deepEqual(
            mine,
            row.filter((v) => v !== 0),
            `sentence ${i}`,
          );
        });
      }
      const got = (await predictLogits(model, inputs)).data as Float32Array;
      const want = ref.logits.flat();
      const scale = Math.max(...want.map(Math.abs));
      const err = Math.max(...want.map((w, i) => Math.abs(got[i]! - w)));
      assert.ok(
        err <= 1e-4 * scale,
        `max |Δ| ${err.toExponential(2)} vs scale ${scale.toFixed(3)} (transformers ${ref.transformers})`,
      );
    });
  }
});
