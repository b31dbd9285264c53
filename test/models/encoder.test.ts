/** The shared encoder through ONNX Runtime against the float64 reference, forward and gradient. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/autodiff.js';
import { f32, hostArray, ref } from '../../src/graph/ndarray.js';
import { evaluateRef } from '../../src/graph/reference.js';
import { input } from '../../src/graph/tensor.js';
import {
  digital,
  type EncoderConfig,
  encoder,
  encoderLayerMacs,
  randomLayerWeights,
} from '../../src/models/encoder.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';
import { maxRelErr } from '../helpers/check.js';

const base: EncoderConfig = { hidden: 8, heads: 2, ffn: 16, layerNormEps: 1e-6, act: 'gelu', preNorm: true };

for (const cfg of [base, { ...base, preNorm: false, act: 'gelu_new' as const, layerNormEps: 1e-12 }]) {
  describe(`encoder (${cfg.preNorm ? 'pre-norm, ViT' : 'post-norm, BERT'})`, () => {
    const rng = new Rng(2);
    const layers = [0, 1].map((i) => randomLayerWeights(cfg, `layer.${i}`, rng, 0.3));
    const [B, T] = [2, 5];
    const x = input('x', [B, T, cfg.hidden]);
    // additive mask hiding the last two tokens of the second sequence
    const maskData = new Float32Array(B * T);
    maskData.set([-1e4, -1e4], 2 * T - 2);
    const mask = input('mask', [B, 1, 1, T]);
    const y = encoder(digital, x, layers, cfg, mask);
    const feeds = {
      x: hostArray('float32', [B, T, cfg.hidden], rng.fillNormal(new Float32Array(B * T * cfg.hidden))),
      mask: f32([B, 1, 1, T], maskData),
    };

    it('matches the float64 reference', async () => {
      const got = (await (await compile({ y }, { bakeParams: true })).run(feeds))['y']!;
      const [want] = evaluateRef([y], feeds);
      assert.ok(maxRelErr(got.data as Float32Array, want!.data) < 1e-5);
    });

    it('masked tokens do not change the other tokens', async () => {
      const g = await compile({ y });
      const a = (await g.run(feeds))['y']!.data as Float32Array;
      const x2 = new Float32Array(feeds.x.data as Float32Array);
      x2.fill(7, (2 * T - 1) * cfg.hidden); // change the last (masked) token of sequence 2
      const b = (await g.run({ ...feeds, x: f32(feeds.x.shape, x2) }))['y']!.data as Float32Array;
      const unmasked = (T + 3) * cfg.hidden; // sequence 2 up to its unmasked tokens 0, 1, 2
      assert.ok(maxRelErr(b.subarray(T * cfg.hidden, unmasked), a.subarray(T * cfg.hidden, unmasked)) < 1e-6);
      assert.ok(maxRelErr(b.subarray(0, T * cfg.hidden), a.subarray(0, T * cfg.hidden)) < 1e-6);
    });

    it('gradients of query and FFN weights match finite differences', async () => {
      const loss = y.mul(y).mean();
      const wq = layers[0]!.query.weight;
      const wf = layers[1]!.ffnIn.weight;
      const [gq, gf] = grad(loss, [wq, wf]);
      const out = await (await compile({ gq: gq!, gf: gf! })).run(feeds);
      for (const [w, g] of [
        [wq, out['gq']!],
        [wf, out['gf']!],
      ] as const) {
        const v = (w.attrs as { name: string; value: { data: Float32Array; shape: number[] } }).value;
        const name = (w.attrs as { name: string }).name;
        for (const k of [0, 3, 17]) {
          const h = 1e-5;
          const at = (d: number) => {
            const p = ref(v.shape, v.data);
            p.data[k]! += d;
            const [l] = evaluateRef([loss], { ...feeds, [name]: p });
            return l!.data[0]!;
          };
          const fd = (at(h) - at(-h)) / (2 * h);
          const got = (g.data as Float32Array)[k]!;
          assert.ok(
            Math.abs(got - fd) <= 1e-4 * Math.max(1, Math.abs(fd)) + 1e-6,
            `${name}[${k}]: ${got} vs ${fd}`,
          );
        }
      }
    });
  });
}

describe('encoderLayerMacs', () => {
  it('counts the DeiT-S layer (4.6 GMAC for 12 layers at 197 tokens)', () => {
    const macs = 12 * encoderLayerMacs({ hidden: 384, ffn: 1536 }, 197);
    assert.equal(macs, 12 * (197 * (4 * 384 * 384 + 2 * 384 * 1536) + 2 * 197 * 197 * 384));
    assert.ok(Math.abs(macs / 4.6e9 - 1) < 0.02);
  });
});
