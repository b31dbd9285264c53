/** ClipFormer's K/V conductance transform: config, stage bounds, the differential pair, wiring. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { dynamicProduct } from '../../src/analog/dynamic.js';
import { loadSpec } from '../../src/analog/presets.js';
import { Crossbar } from '../../src/analog/spec.js';
import { cost } from '../../src/cost/cost.js';
import { modelShape } from '../../src/cost/shape.js';
import { hostArray, toNumbers } from '../../src/graph/ndarray.js';
import { input } from '../../src/graph/tensor.js';
import {
  checkWindow,
  clipformerTransform,
  costBeta,
  kvTransformFor,
  parseClipFormer,
  parseClipFormerFlag,
} from '../../src/methods/clipformer.js';
import { loadModel } from '../../src/models/index.js';
import { compile } from '../../src/runtime/session.js';
import { ConfigError } from '../../src/util/validate.js';
import { ROOT } from '../helpers/models.js';

const xbar = Crossbar.parse({
  mapping: { gMinUS: 1, gMaxUS: 10 },
  tile: { rows: 4, cols: 4, split: 'fixed' },
});

async function transformed(alpha: number, beta: number, g: number[]): Promise<number[]> {
  const x = input('g', [g.length]);
  const t = clipformerTransform(parseClipFormer({ alpha, beta }));
  const c = await compile({ y: t(x, xbar) }, { cache: false });
  return toNumbers((await c.run({ g: hostArray('float32', [g.length], Float32Array.from(g)) }))['y']!);
}

describe('ClipFormer config', () => {
  it('rejects α < 1, β outside (0, 1], unknown fields, and names the field', () => {
    for (const bad of [{ alpha: 0.5 }, { beta: 0 }, { beta: 1.5 }, { alfa: 2 }]) {
      assert.throws(
        () => parseClipFormer(bad, 'cf.yaml'),
        (e: Error) =>
          e instanceof ConfigError && /cf\.yaml/.test(e.message) && /alpha|beta|alfa/.test(e.message),
      );
    }
    assert.deepEqual(parseClipFormerFlag('2,0.25'), { alpha: 2, beta: 0.25, layers: 'all' });
    assert.throws(() => parseClipFormerFlag('two'), /--clipformer/);
    assert.throws(() => checkWindow(parseClipFormer({ beta: 0.05 }), xbar), /β > 0\.1/);
  });

  it('β reaches the cost model only when every layer is transformed', () => {
    assert.equal(costBeta(parseClipFormer({ beta: 0.25 })), 0.25);
    assert.equal(costBeta(parseClipFormer({ beta: 0.25, layers: [0] })), 1);
  });

  it('β = 0.25 lowers the rram-clipformer cost of the shipped ViT by one K/V slice', () => {
    const shape = modelShape(loadModel(join(ROOT, 'models/vit-fmnist')).config);
    const hw = loadSpec('rram-clipformer');
    const off = cost(shape, hw);
    const on = cost(shape, hw, { beta: costBeta(parseClipFormer({ beta: 0.25 })) });
    assert.equal(on.hardware.kvSlices, off.hardware.kvSlices! - 1);
    assert.ok(on.totals.energyMJ < off.totals.energyMJ && on.totals.areaMm2 < off.totals.areaMm2);
  });

  it('applies per layer as configured', () => {
    const f = kvTransformFor(parseClipFormer({ layers: [1] }));
    assert.equal(f('layer.0.scores'), undefined);
    assert.ok(f('layer.1.mix'));
    const per = kvTransformFor([null, parseClipFormer({})]);
    assert.equal(per('layer.0.scores'), undefined);
    assert.ok(per('layer.1.scores'));
  });
});

describe('ClipFormer transform', () => {
  const g = Array.from({ length: 91 }, (_, i) => 1 + i * 0.1); // G_MIN..G_MAX
  it('stage I floors at G_MIN after subtracting α·G_MIN; stage II caps at β·G_MAX', async () => {
    for (const [a, b] of [
      [1, 1],
      [2, 1],
      [2, 0.25],
      [3.5, 0.6],
    ] as const) {
      const y = await transformed(a, b, g);
      y.forEach((v, i) => {
        const want = Math.min(Math.max(g[i]! - a, 1), b * 10);
        assert.ok(Math.abs(v - want) < 1e-5, `α ${a} β ${b}: g ${g[i]} → ${v}, want ${want}`);
        assert.ok(v >= 1 - 1e-6 && v <= b * 10 + 1e-5);
      });
      assert.ok(Math.abs(y[0]! - 1) < 1e-6, 'G_MIN (the idle device of a pair) is a fixed point');
    }
  });

  it('β = 1 leaves stage II out; α = 1 with G_MIN = 0 is the identity', async () => {
    const t = clipformerTransform(parseClipFormer({ alpha: 1, beta: 1 }));
    const zeroMin = Crossbar.parse({ mapping: { gMinUS: 0, gMaxUS: 10 } });
    const x = input('g', [3]);
    assert.equal(t(x, zeroMin).op, 'maximum'); // max(G − 0, 0): values ≥ 0 unchanged
    const c = await compile({ y: t(x, zeroMin) }, { cache: false });
    const y = toNumbers((await c.run({ g: hostArray('float32', [3], Float32Array.of(0, 3.3, 10)) }))['y']!);
    assert.deepEqual(
      y.map((v) => Math.round(v * 1e5) / 1e5),
      [0, 3.3, 10],
    );
    const b1 = await transformed(2, 1, [10]);
    assert.ok(Math.abs(b1[0]! - 8) < 1e-5, 'β = 1 keeps the top of the range (only the α shift)');
  });

  it('transforms both signs of the differential pair alike (noise-free product vs hand value)', async () => {
    // 1×4 row of inputs times a 4×2 operand with both signs; analog cells, no noise
    const w = [0.9, -0.9, -0.05, 0.05, 0.5, -0.3, -1.0, 0.2];
    const xv = [1, 0.5, -0.25, 2];
    const q = input('q', [1, 1, 1, 4]);
    const k = input('k', [1, 1, 4, 2]);
    const cf = parseClipFormer({ alpha: 2, beta: 0.5 });
    const y = dynamicProduct(q, k, xbar, 1, kvTransformFor(cf)('layer.0.scores'));
    const c = await compile({ y }, { cache: false });
    const out = toNumbers(
      (
        await c.run({
          q: hostArray('float32', [1, 1, 1, 4], Float32Array.from(xv)),
          k: hostArray('float32', [1, 1, 4, 2], Float32Array.from(w)),
        })
      )['y']!,
    );
    // by hand: per tile scale m = max|w| = 1; G = |w|·9 + 1; stage I, II; back to weight units
    const m = 1;
    const clip = (v: number) => {
      const g = Math.min(Math.max((Math.abs(v) / m) * 9 + 1 - 2, 1), 5);
      return (Math.sign(v) * m * (g - 1)) / 9;
    };
    for (let col = 0; col < 2; col++) {
      let want = 0;
      for (let r = 0; r < 4; r++) want += xv[r]! * clip(w[r * 2 + col]!);
      assert.ok(Math.abs(out[col]! - want) < 1e-5, `column ${col}: ${out[col]} vs ${want}`);
    }
    // and the signs matter: flipping the operand flips the output exactly
    const neg = toNumbers(
      (
        await c.run({
          q: hostArray('float32', [1, 1, 1, 4], Float32Array.from(xv)),
          k: hostArray('float32', [1, 1, 4, 2], Float32Array.from(w.map((v) => -v))),
        })
      )['y']!,
    );
    for (const [i, v] of neg.entries()) assert.ok(Math.abs(v + out[i]!) < 1e-6);
  });
});
