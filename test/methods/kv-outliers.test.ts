/** K/V outlier injection: the ideal model's function is kept, the chosen channels grow, bad options are refused. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { predictLogits } from '../../src/eval/predict.js';
import { type HostArray, hostArray, toNumbers } from '../../src/graph/ndarray.js';
import { injectKvOutliers } from '../../src/methods/kv-outliers.js';
import { loadModel, Model } from '../../src/models/index.js';
import { ParamStore } from '../../src/models/params.js';
import { InputError } from '../../src/util/errors.js';
import { xbar } from '../helpers/cli.js';
import { bertSst2, ROOT, vitMnist } from '../helpers/models.js';

/** The model with `tensors` in place of its own (HF names and layouts). */
function withTensors(model: Model, tensors: Record<string, HostArray>): Model {
  const store = new ParamStore({ file: 'test', names: () => Object.keys(tensors), get: (n) => tensors[n] });
  return new Model(model.config, store);
}

const maxRelDiff = (a: number[], b: number[]) => {
  const scale = Math.max(...a.map(Math.abs));
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]!))) / scale;
};

describe('K/V outliers', () => {
  it('keep the shipped ViT’s logits (s a power of two: the rescaling is exact)', async () => {
    const dir = join(ROOT, 'models', 'vit-fmnist');
    const model = loadModel(dir);
    const data = openData(parseDataSpec(`fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`), model, {
      modelDir: dir,
    });
    const x = data.inputs(0, 8);
    const before = toNumbers(await predictLogits(model, x));
    const { tensors, chosen } = injectKvOutliers(model.store.toHf(), model.config.heads, {
      scale: 16,
      channels: 2,
      on: ['key', 'value'],
    });
    const after = toNumbers(await predictLogits(withTensors(model, tensors), x));
    // float32 sums in another association only: far below any change a real outlier would make
    assert.ok(maxRelDiff(before, after) < 1e-5, `logits moved by ${maxRelDiff(before, after)}`);
    assert.equal(chosen.length, model.config.layers);
    for (const c of chosen) {
      assert.equal(c.key.length, model.config.heads);
      for (const picks of [...c.key, ...c.value]) assert.equal(picks.length, 2);
    }
  });

  it('scale the chosen rows of K and V by s, Q’s rows and the projection’s columns by 1/s, and nothing else', () => {
    const { model } = vitMnist();
    const hf = model.store.toHf();
    const s = 8;
    const { tensors, chosen } = injectKvOutliers(hf, model.config.heads, {
      scale: s,
      channels: 1,
      on: ['key', 'value'],
    });
    const headDim = model.config.hidden / model.config.heads;
    const p = 'vit.encoder.layer.0.attention';
    const kRows = chosen[0]!.key.flatMap((c, h) => c.map((r) => h * headDim + r));
    const vRows = chosen[0]!.value.flatMap((c, h) => c.map((r) => h * headDim + r));
    const d = model.config.hidden;
    const ratio = (name: string, i: number) => Number(tensors[name]!.data[i]) / Number(hf[name]!.data[i]);
    for (let r = 0; r < d; r++)
      for (let c = 0; c < d; c++) {
        const i = r * d + c;
        assert.equal(ratio(`${p}.attention.key.weight`, i), kRows.includes(r) ? s : 1);
        assert.equal(ratio(`${p}.attention.query.weight`, i), kRows.includes(r) ? 1 / s : 1);
        assert.equal(ratio(`${p}.attention.value.weight`, i), vRows.includes(r) ? s : 1);
        assert.equal(ratio(`${p}.output.dense.weight`, i), vRows.includes(c) ? 1 / s : 1);
      }
    // the chosen K row is the head's largest in norm
    const w = hf[`${p}.attention.key.weight`]!;
    const norm = (r: number) =>
      Array.from({ length: d }, (_, c) => Number(w.data[r * d + c]) ** 2).reduce((a, b) => a + b);
    for (let h = 0; h < model.config.heads; h++) {
      const best = Array.from({ length: headDim }, (_, r) => h * headDim + r).sort(
        (a, b) => norm(b) - norm(a),
      )[0];
      assert.equal(kRows[h], best);
    }
    // untouched tensors are the same objects
    assert.equal(tensors[`${p}.output.dense.bias`], hf[`${p}.output.dense.bias`]);
  });

  it('work on BERT’s names (attention.self.*), K only', () => {
    const { model } = bertSst2();
    const hf = model.store.toHf();
    const { tensors } = injectKvOutliers(hf, model.config.heads, { scale: 4, channels: 1, on: ['key'] });
    const changed = Object.keys(hf).filter((n) => tensors[n] !== hf[n]);
    assert.deepEqual(changed.sort(), [
      'bert.encoder.layer.0.attention.self.key.bias',
      'bert.encoder.layer.0.attention.self.key.weight',
      'bert.encoder.layer.0.attention.self.query.bias',
      'bert.encoder.layer.0.attention.self.query.weight',
    ]);
  });

  it('refuse a scale that is not a power of two, channels beyond the head, a model without attention', () => {
    const { model } = vitMnist();
    const hf = model.store.toHf();
    const bad = [
      [{ scale: 3, channels: 1 }, /scale: 3 is not allowed, use a power of two/],
      [{ scale: 1, channels: 1 }, /scale: 1 is not allowed/],
      [{ scale: 4, channels: 9 }, /channels: 9 is not allowed, use a whole number from 1 to the head size 8/],
    ] as const;
    for (const [o, msg] of bad)
      assert.throws(
        () => injectKvOutliers(hf, model.config.heads, { ...o, on: ['key'] }, '--scale'),
        (e: unknown) => {
          assert.ok(e instanceof InputError);
          assert.match(e.message, /--scale/);
          assert.match(e.message, msg);
          return true;
        },
      );
    assert.throws(
      () => injectKvOutliers({ w: hostArray('float32', [2, 2]) }, 2, { scale: 2, channels: 1, on: ['key'] }),
      /no attention query\/key\/value tensors/,
    );
  });

  it('xbar kv-outliers writes a model folder that loads, with its record of the channels', () => {
    const { dir } = vitMnist();
    const out = join(mkdtempSync(join(tmpdir(), 'xbar-kv-')), 'model');
    const r = xbar(['kv-outliers', '--model', dir, '--scale', '4', '--out', out]);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(existsSync(join(out, 'model.safetensors')));
    const record = JSON.parse(readFileSync(join(out, 'kv_outliers.json'), 'utf8'));
    assert.equal(record.scale, 4);
    assert.deepEqual(record.on, ['key', 'value']);
    loadModel(out);
    const bad = xbar(['kv-outliers', '--model', dir, '--scale', '6', '--out', out]);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /scale: 6 is not allowed, use a power of two/);
  });
});
