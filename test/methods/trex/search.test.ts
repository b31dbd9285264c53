/** TReX patterns, Algorithm 1, the distillation loss, token pruning and the cost of the variants. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../../src/analog/presets.js';
import { cost } from '../../../src/cost/cost.js';
import { resolveShape } from '../../../src/cost/shape.js';
import { hostArray } from '../../../src/graph/ndarray.js';
import { constant, input } from '../../../src/graph/tensor.js';
import { chooseReuseCount } from '../../../src/methods/trex/algorithm.js';
import { variantCostOptions } from '../../../src/methods/trex/cost.js';
import {
  continuousPatterns,
  pyramidPatterns,
  stridedPatterns,
  uniformPatterns,
} from '../../../src/methods/trex/patterns.js';
import { reuseCountFor } from '../../../src/methods/trex/search.js';
import { pruneTokens } from '../../../src/models/encoder.js';
import { MODEL_SIZES } from '../../../src/models/index.js';
import { compile } from '../../../src/runtime/session.js';
import { distillationLoss } from '../../../src/train/distill.js';
import { InputError } from '../../../src/util/errors.js';

describe('reuse patterns', () => {
  it('counts for 12 encoders, N_reuse = 4 (derived by hand)', () => {
    // strided: SL=2 starts 1..5 (last = s+6 ≤ 11), SL=3 starts 1..2 (s+9 ≤ 11), SL ≥ 4 does not fit
    assert.equal(stridedPatterns(12, 4).length, 7);
    // continuous: starts 1..8
    assert.equal(continuousPatterns(12, 4).length, 8);
    // pyramid, runs of 2 or 3 (the last run of 3 is one encoder): last = s + SL + 2 ≤ 11,
    // so 9 − SL starts for SL = 2..8: 7+6+5+4+3+2+1 = 28 per run length
    assert.equal(pyramidPatterns(12, 4).length, 56);
    assert.equal(uniformPatterns(12, 4).length, 71);
  });
  it('the paper’s Fig. 5 shapes', () => {
    assert.deepEqual(stridedPatterns(12, 4)[0]!.encoders, [1, 3, 5, 7]);
    assert.deepEqual(continuousPatterns(12, 4)[0]!.encoders, [1, 2, 3, 4]);
    assert.deepEqual(pyramidPatterns(12, 4)[0]!.encoders, [1, 2, 4, 5]); // SL=2, N_cont=2
  });
  it('counts for the shipped 4-encoder ViT and valid, distinct patterns everywhere', () => {
    assert.deepEqual(
      [1, 2, 3].map((n) => uniformPatterns(4, n).length),
      [3, 3, 1],
    );
    for (const layers of [4, 6, 12]) {
      for (let n = 1; n < layers; n++) {
        const ps = uniformPatterns(layers, n);
        const sets = ps.map((p) => p.encoders.join(','));
        assert.equal(new Set(sets).size, sets.length, `duplicates at L=${layers}, N=${n}`);
        assert.equal(new Set(ps.map((p) => p.label)).size, ps.length);
        for (const p of ps) {
          assert.equal(p.encoders.length, n);
          assert.ok(p.encoders[0]! >= 1 && p.encoders.at(-1)! <= layers - 1);
          for (const e of p.encoders) assert.equal(p.reuse[e], e - 1);
        }
      }
      // N = L−1: every encoder but the first, one continuous run
      assert.equal(uniformPatterns(layers, layers - 1).length, 1);
    }
    assert.throws(() => uniformPatterns(4, 4), /N_reuse 4 is not allowed for 4 encoders, use 0\.\.3/);
  });
});

describe('Algorithm 1', () => {
  const delays = [10, 8.2, 6.4, 4.6, 2.8];
  const delay = (n: number) => delays[n]!;
  it('picks the smallest N_reuse whose delay meets the target', () => {
    assert.equal(chooseReuseCount(delay, 5, 7).nReuse, 2);
    assert.equal(chooseReuseCount(delay, 5, 6.4).nReuse, 2); // equal meets
    assert.equal(chooseReuseCount(delay, 5, 6.39).nReuse, 3);
    assert.equal(chooseReuseCount(delay, 5, 11).nReuse, 0);
    assert.deepEqual(
      chooseReuseCount(delay, 5, 5).tried.map((t) => t.nReuse),
      [0, 1, 2, 3],
    );
  });
  it('says when a target cannot be met', () => {
    assert.throws(
      () => chooseReuseCount(delay, 5, 2),
      (e: Error) => {
        assert.ok(e instanceof InputError);
        assert.match(
          e.message,
          /--target-delay 2 ms cannot be met: with 4 of 5 encoders reusing attention .* 2\.800 ms/,
        );
        return true;
      },
    );
  });
  it('on the cost model: DeiT-S at TReX-D-7 reuses 5 encoders', () => {
    const model = { config: MODEL_SIZES['deit-s']! } as Parameters<typeof reuseCountFor>[0]['model'];
    const hw = loadSpec('fefet-trex');
    // deit-s (198 tokens): ~10.9 ms; each reuse encoder saves ~0.8 ms (TBs costed)
    const baseline = reuseCountFor({ model, hw, targetDelayMs: 100 });
    assert.equal(baseline.nReuse, 0);
    assert.ok(baseline.delayMs > 10 && baseline.delayMs < 12);
    const pick = reuseCountFor({ model, hw, targetDelayMs: 7.3 });
    assert.equal(pick.nReuse, 5);
    for (let i = 1; i < pick.tried.length; i++)
      assert.ok(pick.tried[i]!.delayMs < pick.tried[i - 1]!.delayMs);
  });
});

describe('distillation loss', () => {
  it('matches a hand computation', async () => {
    const s = [1.0, -0.5, 2.0, 0.3, 0.1, -1.2];
    const t = [0.2, 0.4, 1.5, -0.7, 2.2, 0.0];
    const labels = [2, 1];
    const [ce, kl, T] = [0.3, 0.7, 2];
    const logSoftmax = (z: number[]) => {
      const m = Math.max(...z);
      const lse = m + Math.log(z.reduce((a, v) => a + Math.exp(v - m), 0));
      return z.map((v) => v - lse);
    };
    let want = 0;
    for (let b = 0; b < 2; b++) {
      const zs = s.slice(3 * b, 3 * b + 3);
      const zt = t.slice(3 * b, 3 * b + 3);
      const cross = -logSoftmax(zs)[labels[b]!]!;
      const ls = logSoftmax(zs.map((v) => v / T));
      const lt = logSoftmax(zt.map((v) => v / T));
      const div = lt.reduce((a, v, c) => a + Math.exp(v) * (v - ls[c]!), 0);
      want += (ce * cross + kl * T * T * div) / 2;
    }
    const student = input('s', [2, 3]);
    const loss = distillationLoss(
      student,
      constant(hostArray('int32', [2], Int32Array.from(labels))),
      constant(hostArray('float32', [2, 3], Float32Array.from(t))),
      { ceWeight: ce, klWeight: kl, temperature: T },
    );
    const got = (
      await (await compile({ loss })).run({ s: hostArray('float32', [2, 3], Float32Array.from(s)) })
    )['loss']!;
    assert.ok(
      Math.abs((got.data as Float32Array)[0]! - want) < 1e-6 * Math.max(1, want),
      `${got.data} vs ${want}`,
    );
  });
});

describe('token pruning', () => {
  it('keeps the class token and the tokens it attends to most, in that order', async () => {
    const [b, h, t, d] = [1, 2, 5, 2];
    // class-token attention per head; mean over heads: [·, 0.1, 0.4, 0.2, 0.3]
    const probs = new Float32Array(b * h * t * t);
    probs.set([0, 0.2, 0.3, 0.1, 0.4], 0);
    probs.set([0, 0.0, 0.5, 0.3, 0.2], t * t);
    const x = Float32Array.from({ length: t * d }, (_, i) => i); // token i = [2i, 2i+1]
    const mask = Float32Array.from([0, 0, 0, -9, 0]);
    const out = pruneTokens(
      constant(hostArray('float32', [b, t, d], x)),
      constant(hostArray('float32', [b, h, t, t], probs)),
      3,
      constant(hostArray('float32', [b, 1, 1, t], mask)),
    );
    const r = await (await compile({ x: out.x, m: out.mask! })).run();
    assert.deepEqual([...(r['x']!.data as Float32Array)], [0, 1, 4, 5, 8, 9]); // tokens 0, 2, 4
    assert.deepEqual([...(r['m']!.data as Float32Array)], [0, 0, 0]);
  });
});

describe('cost of the variants', () => {
  const spec = loadSpec('fefet-trex');
  const shape = resolveShape('deit-s', { tokens: 197 });
  const base = cost(shape, spec).totals;
  it('weight sharing keeps energy and delay and removes the sharing encoders’ static crossbars', () => {
    const shared = cost(shape, spec, variantCostOptions({ shareWeights: { 1: 0, 3: 2 } }, 12, 197)).totals;
    assert.ok(Math.abs(shared.energyMJ - base.energyMJ) < 1e-12);
    assert.ok(Math.abs(shared.delayMs - base.delayMs) < 1e-12);
    assert.equal(base.crossbars - shared.crossbars, 2 * 1728); // Q, K, V, projection, MLP of two encoders
    assert.ok(shared.areaMm2 < base.areaMm2);
  });
  it('token pruning costs each encoder at its own tokens', () => {
    const same = cost(shape, spec, { tokensPerLayer: Array(12).fill(197) }).totals;
    assert.ok(Math.abs(same.edap - base.edap) < 1e-9 * base.edap);
    const o = variantCostOptions({ tokenKeep: { 3: 0.5 } }, 12, 197);
    assert.deepEqual(o.tokensPerLayer, [197, 197, 197, 197, 99, 99, 99, 99, 99, 99, 99, 99]);
    const pruned = cost(shape, spec, o);
    assert.ok(pruned.totals.energyMJ < base.energyMJ && pruned.totals.delayMs < base.delayMs);
    // each encoder's stages are those of the whole model at that encoder's token count
    const at99 = cost(resolveShape('deit-s', { tokens: 99 }), spec);
    const full = cost(shape, spec);
    const stagesOf = (r: ReturnType<typeof cost>, layer: number) => r.stages.filter((s) => s.layer === layer);
    for (let layer = 0; layer < 12; layer++)
      assert.deepEqual(stagesOf(pruned, layer), stagesOf(layer < 4 ? full : at99, layer), `encoder ${layer}`);
    assert.throws(() => cost(shape, spec, { tokensPerLayer: [197] }), /tokensPerLayer/);
  });
});
