/** TReX reuse wiring, variants in config.json, and the save/load round trip. */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { hostArray } from '../../../src/graph/ndarray.js';
import { gelu, layerNorm } from '../../../src/graph/nn.js';
import type { Tensor } from '../../../src/graph/tensor.js';
import { writeSafetensors } from '../../../src/io/safetensors.js';
import { deriveVariant } from '../../../src/methods/trex/derive.js';
import { digital, type Matmuls } from '../../../src/models/encoder.js';
import {
  loadModel,
  type Model,
  parseModelConfig,
  randomModel,
  toHfConfig,
} from '../../../src/models/index.js';
import { compile } from '../../../src/runtime/session.js';
import { InputError } from '../../../src/util/errors.js';
import { Rng } from '../../../src/util/math.js';
import { maxRelErr } from '../../helpers/check.js';

const vitJson = {
  model_type: 'vit',
  hidden_size: 16,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  intermediate_size: 32,
  image_size: 8,
  patch_size: 4,
  num_channels: 1,
  num_labels: 3,
};
const bertJson = {
  model_type: 'bert',
  vocab_size: 50,
  hidden_size: 16,
  num_hidden_layers: 3,
  num_attention_heads: 2,
  intermediate_size: 32,
  num_labels: 2,
};

/** Products that record the input of every static layer by name. */
function recording(): { m: Matmuls; inputs: Map<string, Tensor> } {
  const inputs = new Map<string, Tensor>();
  return {
    inputs,
    m: {
      ...digital,
      linear: (name, x, w, b) => {
        inputs.set(name, x);
        return digital.linear(name, x, w, b);
      },
    },
  };
}

/** Random TB weights (the derived identity start would hide a wrong wiring less well). */
function randomizeTransformations(model: Model, seed: number): void {
  const rng = new Rng(seed);
  for (const p of model.params()) {
    if (!/transformation/.test((p.attrs as { name: string }).name)) continue;
    const v = (p.attrs as { value: { data: Float32Array } }).value.data;
    rng.fillNormal(v, 0.3, 0.5);
  }
}

const param = (model: Model, name: string): Tensor => {
  const p = model.params().find((t) => (t.attrs as { name: string }).name === name);
  assert.ok(p, `no param ${name}`);
  return p;
};

for (const [family, json, root] of [
  ['ViT', vitJson, 'vit'],
  ['BERT', bertJson, 'bert'],
] as const) {
  describe(`TReX reuse wiring (${family})`, () => {
    const original = randomModel(parseModelConfig(json, 'test'), 1, 0.3);
    const model = deriveVariant(original, { reuse: { 2: 1 } });
    randomizeTransformations(model, 5);
    const feeds =
      family === 'ViT'
        ? { pixel_values: hostArray('float32', [2, 1, 8, 8], new Rng(2).fillNormal(new Float32Array(128))) }
        : {
            input_ids: hostArray(
              'int32',
              [2, 6],
              Int32Array.from({ length: 12 }, (_, i) => (7 * i + 3) % 50),
            ),
            attention_mask: hostArray(
              'int32',
              [2, 6],
              Int32Array.from({ length: 12 }, (_, i) => (i < 10 ? 1 : 0)),
            ),
            token_type_ids: hostArray('int32', [2, 6], new Int32Array(12)),
            position_ids: hostArray(
              'int32',
              [2, 6],
              Int32Array.from({ length: 12 }, (_, i) => i % 6),
            ),
          };
    const shape = family === 'ViT' ? { batch: 2 } : { batch: 2, seqLen: 6 };

    it("the reuse encoder's projection receives exactly TB(previous encoder's attention output)", async () => {
      const { m, inputs } = recording();
      model.graph(shape, m);
      const ctx1 = inputs.get('layer.1.output')!; // encoder 1's concatenated heads
      const got = inputs.get('layer.2.output')!;
      // by hand, from the stored TB tensors: LayerNorm → x·Wᵀ + b (HF [out, in]) → exact GELU
      const p = `${root}.encoder.layer.2.attention.transformation`;
      const want = gelu(
        layerNorm(ctx1, param(model, `${p}.layernorm.weight`), param(model, `${p}.layernorm.bias`), 1e-12)
          .matmul(param(model, `${p}.dense.weight`))
          .add(param(model, `${p}.dense.bias`)),
      );
      const out = await (await compile({ got, want }, { bakeParams: true })).run(feeds);
      assert.ok(maxRelErr(out['got']!.data as Float32Array, out['want']!.data as Float32Array) < 1e-6);
      // and the TB is not an identity: the check above would pass for a pass-through
      const raw = await (await compile({ ctx1 }, { bakeParams: true })).run(feeds);
      assert.ok(maxRelErr(out['got']!.data as Float32Array, raw['ctx1']!.data as Float32Array) > 0.1);
    });

    it('the reuse encoder computes no Q, K, V and keeps its projection and MLP', () => {
      const { m, inputs } = recording();
      model.graph(shape, m);
      const names = [...inputs.keys()];
      for (const n of ['query', 'key', 'value']) {
        assert.ok(names.includes(`layer.1.${n}`));
        assert.ok(!names.includes(`layer.2.${n}`), `layer.2.${n} should be dropped`);
      }
      for (const n of ['transformation', 'output', 'ffnIn', 'ffnOut'])
        assert.ok(names.includes(`layer.2.${n}`));
      assert.ok(
        !model
          .params()
          .some((t) => /layer\.2\.attention\.(attention|self)\./.test((t.attrs as { name: string }).name)),
      );
    });

    it('saves and loads: same config, tensors and logits', async () => {
      const dir = mkdtempSync(join(tmpdir(), 'xbar-trex-'));
      writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.config)));
      writeSafetensors(join(dir, 'model.safetensors'), model.store.toHf());
      const hf = JSON.parse(JSON.stringify(toHfConfig(model.config)));
      assert.deepEqual(hf.trex_reuse, { '2': 1 });
      const loaded = loadModel(dir);
      assert.deepEqual(loaded.config, model.config);
      const a = model.store.toHf();
      const b = loaded.store.toHf();
      assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
      for (const k of Object.keys(a)) assert.deepEqual(b[k]!.data, a[k]!.data, k);
      assert.ok(Object.keys(a).includes(`${root}.encoder.layer.2.attention.transformation.dense.weight`));
      const run = async (mm: Model) =>
        (await (await compile({ l: mm.graph(shape).logits }, { bakeParams: true })).run(feeds))['l']!.data;
      assert.deepEqual(await run(loaded), await run(model));
    });
  });
}

describe('variant fields in config.json', () => {
  const bad = (extra: Record<string, unknown>) => () =>
    parseModelConfig({ ...vitJson, ...extra }, 'dir/config.json');
  it('name the field, key and value of an inconsistent map', () => {
    assert.throws(bad({ trex_reuse: { '2': 5 } }), (e: Error) => {
      assert.ok(e instanceof InputError);
      assert.match(e.message, /dir\/config\.json/);
      assert.match(e.message, /trex_reuse\."2": 5 is not allowed, use an earlier encoder's index 0\.\.1/);
      return true;
    });
    assert.throws(
      bad({ trex_reuse: { '0': 0 } }),
      /trex_reuse\."0": key is not allowed, use an encoder index 1\.\.2/,
    );
    assert.throws(bad({ trex_reuse: [1, 2] }), /trex_reuse: \[1,2\] is not allowed/);
    assert.throws(
      bad({ xbar_token_keep: { '0': 1.5 } }),
      /xbar_token_keep\."0": 1\.5 is not allowed, use a fraction in \(0, 1\]/,
    );
    assert.throws(bad({ trex_reuse: { '2': 1 }, xbar_share_weights: { '2': 1 } }), /also reuses attention/);
  });
  it('a reuse config without TB tensors names the missing tensors', () => {
    const plain = randomModel(parseModelConfig(vitJson, 'test'), 1);
    const dir = mkdtempSync(join(tmpdir(), 'xbar-trex-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ ...toHfConfig(plain.config), trex_reuse: { '1': 0 } }),
    );
    writeSafetensors(join(dir, 'model.safetensors'), plain.store.toHf());
    assert.throws(
      () => loadModel(dir),
      /missing tensor 'vit\.encoder\.layer\.1\.attention\.transformation\.dense\.weight'/,
    );
  });
  it('weight sharing uses the owner’s tensors and stores none of its own', () => {
    const shared = deriveVariant(randomModel(parseModelConfig(vitJson, 'test'), 1), {
      shareWeights: { 2: 1 },
    });
    const names = Object.keys(shared.store.toHf());
    assert.ok(names.some((n) => n.startsWith('vit.encoder.layer.1.')));
    assert.ok(!names.some((n) => n.startsWith('vit.encoder.layer.2.')));
  });
});
