/** The shipped models on the WebGPU runtime: the logits of ONNX Runtime on the CPU within 1e-4. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { predictLogits } from '../../src/eval/predict.js';
import { toNumbers } from '../../src/graph/ndarray.js';
import { loadModel } from '../../src/models/index.js';
import { ROOT } from '../helpers/models.js';
import { webgpuSkip } from '../helpers/webgpu.js';

const SLICES: Record<string, string> = {
  'vit-fmnist': 'fashion-mnist:data/fashion-mnist-demo',
  'bert-sst2': 'glue-sst2:data/sst2-demo',
};

describe('the shipped models on the WebGPU runtime', { skip: webgpuSkip }, () => {
  for (const [name, slice] of Object.entries(SLICES)) {
    it(`${name}: the CPU's logits`, async () => {
      const dir = join(ROOT, 'models', name);
      const model = loadModel(dir);
      const data = openData(parseDataSpec(slice.replace(':', `:${ROOT}`)), model, {
        modelDir: dir,
        maxLength: 32,
      });
      const inputs = data.inputs(0, 4);
      const want = toNumbers(await predictLogits(model, inputs));
      const got = toNumbers(await predictLogits(model, inputs, { provider: 'webgpu' }));
      const scale = Math.max(...want.map(Math.abs));
      const err = Math.max(...want.map((w, i) => Math.abs(got[i]! - w)));
      assert.ok(err <= 1e-4 * scale, `max |Δ| ${err.toExponential(2)} vs scale ${scale.toFixed(3)}`);
    });
  }

  it('evaluate() with two batches in flight on the GPU: each batch’s logits and predictions in their place', async () => {
    const dir = join(ROOT, 'models', 'vit-fmnist');
    const model = loadModel(dir);
    const data = openData(parseDataSpec(SLICES['vit-fmnist']!.replace(':', `:${ROOT}`)), model, {
      modelDir: dir,
      limit: 22,
    });
    const run = async (provider: 'cpu' | 'webgpu') => {
      const logits: number[] = [];
      const r = await evaluate(model, data, {
        batch: 4,
        provider,
        onOutputs: (o) => logits.push(...toNumbers(o['logits']!)),
      });
      return { logits, predictions: [...r.predictions] };
    };
    const want = await run('cpu');
    const got = await run('webgpu');
    assert.equal(got.logits.length, want.logits.length, 'every batch once (the last one short)');
    const scale = Math.max(...want.logits.map(Math.abs));
    const err = Math.max(...want.logits.map((w, i) => Math.abs(got.logits[i]! - w)));
    assert.ok(err <= 1e-4 * scale, `max |Δ| ${err.toExponential(2)} vs scale ${scale.toFixed(3)}`);
    assert.deepEqual(got.predictions, want.predictions);
  });
});
