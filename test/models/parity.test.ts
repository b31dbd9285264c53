/**
 * Parity with PyTorch/transformers: small random models of every family with non-default
 * configs, saved by save_pretrained, with the logits PyTorch computed
 * (scripts/reference/models.py made test/fixtures/models).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { predictLogits } from '../../src/eval/predict.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { loadModel } from '../../src/models/index.js';

export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/models/', import.meta.url));

type Nested = number | Nested[];
const flat = (x: Nested): number[] => (Array.isArray(x) ? x.flatMap(flat) : [x]);
const dims = (x: Nested): number[] => (Array.isArray(x) ? [x.length, ...dims(x[0]!)] : []);

describe('logits match PyTorch (transformers) within 1e-4 relative', () => {
  for (const name of ['vit', 'deit', 'deit-distilled', 'bert', 'roberta']) {
    it(name, async () => {
      const dir = join(FIXTURES, name);
      const ref = JSON.parse(readFileSync(join(dir, 'reference.json'), 'utf8')) as Record<string, Nested>;
      const model = loadModel(dir);
      const arr = (k: string, dtype: 'float32' | 'int32') =>
        ref[k] === undefined
          ? undefined
          : hostArray(
              dtype,
              dims(ref[k]!),
              dtype === 'float32' ? Float32Array.from(flat(ref[k]!)) : Int32Array.from(flat(ref[k]!)),
            );
      const inputs = Object.fromEntries(
        (['pixel_values', 'input_ids', 'attention_mask', 'token_type_ids'] as const).flatMap((k) => {
          const v = arr(k, k === 'pixel_values' ? 'float32' : 'int32');
          return v ? [[k, v]] : [];
        }),
      );
      const got = await predictLogits(model, inputs);
      const want = flat(ref['logits']!);
      assert.deepEqual(got.shape, dims(ref['logits']!));
      const scale = Math.max(...want.map(Math.abs));
      const err = Math.max(...want.map((w, i) => Math.abs((got.data as Float32Array)[i]! - w)));
      assert.ok(err <= 1e-4 * scale, `max |Δ| ${err.toExponential(2)} vs scale ${scale.toFixed(3)}`);
    });
  }
});
