import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MODEL_SIZES, randomModel } from '../../src/models/index.js';
import {
  ENCODER_PRODUCTS,
  encoderProduct,
  layerKind,
  layerName,
  PATCH_EMBEDDING,
  parseLayerName,
} from '../../src/models/layer-names.js';

describe('layer names', () => {
  it('make and parse round-trip for every encoder product', () => {
    for (const product of ENCODER_PRODUCTS) {
      for (const encoder of [0, 7, 11]) {
        const name = layerName(encoder, product);
        const p = parseLayerName(name);
        assert.ok('encoder' in p, name);
        assert.deepEqual({ encoder: p.encoder, product: p.product }, { encoder, product });
      }
    }
    assert.equal(layerName(3, 'query'), 'layer.3.query');
  });

  it('kinds are the groups a spec maps', () => {
    assert.equal(layerKind('layer.2.key'), 'qkv');
    assert.equal(layerKind('layer.2.transformation'), 'projection');
    assert.equal(layerKind('layer.2.ffnOut'), 'ffn');
    assert.equal(layerKind(PATCH_EMBEDDING), 'patchEmbedding');
    assert.equal(layerKind('bert.pooler.dense'), 'classifier');
    assert.deepEqual(parseLayerName('layer.4.mix'), { kind: 'attention', encoder: 4, product: 'mix' });
    assert.throws(() => layerKind('layer.4.scores'), /attention product, not a static layer/);
    assert.equal(encoderProduct('distillation_classifier'), null);
  });

  it('rejects names no model gives', () => {
    for (const bad of [
      '',
      'layer.3.foo',
      'layer.x.query',
      'layer.03.query',
      'layer.3',
      'layer.-1.key',
      'embeddings.cls',
      'a b',
      'layer.*.query',
    ]) {
      const message = /is not a layer name; use layer\.<i>\.<product>/;
      assert.throws(() => parseLayerName(bad), { name: 'InputError', message }, bad);
    }
  });

  it('every product a model builds parses, with its encoder in range', () => {
    for (const size of ['deit-t', 'bert-base']) {
      const c = { ...MODEL_SIZES[size]!, layers: 2 };
      const names = randomModel(c, 0, 0)
        .linearLayers()
        .map((l) => l.name);
      for (const n of names) {
        const p = parseLayerName(n);
        if ('encoder' in p) assert.ok(p.encoder < 2, n);
      }
      assert.ok(names.includes('layer.1.ffnOut'));
    }
  });
});
