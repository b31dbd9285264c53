/** Crossbar counts, bit slices and the K/V slices ClipFormer's β saves, on hand-computed cases. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../src/analog/presets.js';
import { sliceCount } from '../../src/analog/spec.js';
import { cost, crossbarCount, kvSlices, modelShape, resolveShape } from '../../src/cost/index.js';
import { MODEL_SIZES, randomModel } from '../../src/models/index.js';

const q = (bitsPerCell: number, weightBits: number) => ({
  kind: 'quantized' as const,
  bitsPerCell,
  weightBits,
});

describe('crossbar counts', () => {
  it('N_X,L = ⌈in/rows⌉·⌈out/cols⌉ per bit slice', () => {
    assert.equal(crossbarCount(384, 384, 64, 64, 4), 144); // DeiT-S W_Q: 6·6 blocks × 4 slices
    assert.equal(crossbarCount(384, 1536, 64, 64, 4), 576); // DeiT-S MLP in: 6·24·4
    assert.equal(crossbarCount(1536, 384, 64, 64, 4), 576);
    assert.equal(crossbarCount(65, 64, 64, 64), 2); // one row spills into a second crossbar
    assert.equal(crossbarCount(1, 1, 64, 64), 1);
    assert.equal(crossbarCount(768, 3072, 512, 512), 12); // BERT MLP on 512² PCM tiles: 2·6
    assert.equal(crossbarCount(64, 197, 64, 64, 4), 16); // one head's Kᵀ (e × t) of DeiT-S
  });

  it('bit slices: ⌈weightBits/bitsPerCell⌉, one for analog cells', () => {
    assert.equal(sliceCount(q(2, 8)), 4);
    assert.equal(sliceCount(q(1, 8)), 8);
    assert.equal(sliceCount(q(2, 7)), 4);
    assert.equal(sliceCount({ kind: 'analog' }), 1);
  });

  it("ClipFormer's β removes ⌊log2(1/β)⌋ K/V bits", () => {
    assert.equal(kvSlices(q(2, 8)), 4);
    assert.equal(kvSlices(q(2, 8), 0.25), 3); // 6-bit conductances: one 2-bit slice fewer
    assert.equal(kvSlices(q(2, 8), 0.5), 4); // 7 bits still need four 2-bit slices
    assert.equal(kvSlices(q(1, 8), 0.25), 6);
    assert.equal(kvSlices({ kind: 'analog' }, 0.25), 1);
  });
});

describe('a model mapped onto crossbars', () => {
  const counts = (model: string, hw: string) => {
    const r = cost(resolveShape(model), loadSpec(hw));
    const by = new Map<string, number>();
    for (const s of r.stages.filter((s) => s.layer === 0)) by.set(s.stage, s.crossbars);
    return { by, total: r.totals.crossbars };
  };

  it('DeiT-S on fefet-trex: 1728 static and 192 K/V crossbars per encoder', () => {
    const { by, total } = counts('deit-s', 'fefet-trex');
    assert.equal(by.get('qkv'), 3 * 144);
    assert.equal(by.get('projection'), 144);
    assert.equal(by.get('ffnIn'), 576);
    assert.equal(by.get('ffnOut'), 576);
    assert.equal(by.get('scores'), 6 * 16); // 6 heads × (1 × 4 blocks) × 4 slices
    assert.equal(by.get('mix'), 6 * 16);
    assert.equal(total, 12 * (1728 + 192));
  });

  it('BERT-base: 128 tokens give two blocks of K and V per head', () => {
    const { by } = counts('bert-base', 'fefet-trex');
    assert.equal(by.get('qkv'), 3 * 12 * 12 * 4);
    assert.equal(by.get('scores'), 12 * 2 * 4);
    assert.equal(by.get('mix'), 12 * 2 * 4);
  });

  it('hybrid-trex writes K/V into 1-bit SRAM: twice the slices of FeFET', () => {
    const { by } = counts('deit-s', 'hybrid-trex');
    assert.equal(by.get('scores'), 6 * 4 * 8);
    assert.equal(by.get('qkv'), 3 * 144); // static weights stay on 2-bit FeFET
  });

  it('pcm-lammie: analog cells on 512×512 tiles, attention digital', () => {
    const { by } = counts('bert-base', 'pcm-lammie');
    assert.equal(by.get('qkv'), 3 * 4);
    assert.equal(by.get('ffnIn'), 12);
    assert.equal(by.get('scores'), 0);
    assert.equal(by.has('kvWrite'), false);
  });

  it('patch embedding and heads count only when the spec maps them', () => {
    const shape = resolveShape('deit-s');
    const off = cost(shape, loadSpec('fefet-trex'));
    const on = cost(shape, loadSpec('fefet-trex', ['mapped.patchEmbedding=true', 'mapped.classifier=true']));
    // patch 768→384: 12·6·4; two heads 384→1000: 6·16·4 each
    assert.equal(on.totals.crossbars - off.totals.crossbars, 288 + 2 * 384);
    assert.equal(off.totals.uncostedMacs, 196 * 768 * 384 + 2 * 384 * 1000);
    assert.equal(on.totals.uncostedMacs, 0);
    assert.equal(on.totals.macs - off.totals.macs, off.totals.uncostedMacs);
  });

  it("names the patch embedding and heads as the model's graph does, so one override reaches both", () => {
    for (const size of ['bert-base', 'roberta-base', 'deit-s']) {
      const model = randomModel({ ...MODEL_SIZES[size]!, layers: 1 }, 0, 0);
      const shape = modelShape(model.config);
      const outside = model
        .linearLayers()
        .map((l) => l.name)
        .filter((n) => !n.startsWith('layer.'));
      const named = [shape.patchEmbedding, ...shape.classifier].flatMap((l) => (l ? [l.name] : []));
      assert.deepEqual(named, outside, size);
    }
    const heads = ['mapped.classifier=true'];
    const pooler = [...heads, 'overrides=[{layers: bert.pooler.dense, set: {tile: {rows: 128, cols: 128}}}]'];
    const model = randomModel({ ...MODEL_SIZES['bert-base']!, layers: 1 }, 0, 0);
    assert.doesNotThrow(() => loadSpec('fefet-trex', pooler, model));
    const shape = resolveShape('bert-base');
    const before = cost(shape, loadSpec('fefet-trex', heads)).totals.crossbars;
    // the 768×768 pooler on 128×128 tiles instead of 64×64: 36 crossbars per slice, not 144
    assert.equal(before - cost(shape, loadSpec('fefet-trex', pooler)).totals.crossbars, (144 - 36) * 4);
  });
});
