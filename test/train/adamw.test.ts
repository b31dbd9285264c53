/** AdamW against its formula, and a small network trained end to end through ONNX Runtime. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { grad } from '../../src/graph/autodiff.js';
import { f32, i32 } from '../../src/graph/ndarray.js';
import { crossEntropy, gelu, linear } from '../../src/graph/nn.js';
import { input, param, type Tensor } from '../../src/graph/tensor.js';
import { compile } from '../../src/runtime/session.js';
import { AdamW } from '../../src/train/adamw.js';
import { Rng } from '../../src/util/math.js';

const paramData = (p: Tensor) => (p.attrs as { value: { data: Float32Array } }).value.data;

describe('AdamW', () => {
  it('matches the update rule with bias correction and decoupled decay', () => {
    const p = param('w', f32([1, 2], [1, -2]));
    const opt = new AdamW([p], { lr: 0.1, weightDecay: 0.5, beta1: 0.9, beta2: 0.99, eps: 1e-8 });
    const grads = [
      [0.5, -1],
      [0.25, 2],
    ];
    const want = [1, -2];
    const m = [0, 0];
    const v = [0, 0];
    grads.forEach((g, t) => {
      opt.step([f32([1, 2], g)]);
      for (let i = 0; i < 2; i++) {
        m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
        v[i] = 0.99 * v[i]! + 0.01 * g[i]! ** 2;
        const mh = m[i]! / (1 - 0.9 ** (t + 1));
        const vh = v[i]! / (1 - 0.99 ** (t + 1));
        want[i] = want[i]! * (1 - 0.1 * 0.5) - (0.1 * mh) / (Math.sqrt(vh) + 1e-8);
      }
    });
    paramData(p).forEach((x, i) => {
      assert.ok(Math.abs(x - want[i]!) < 1e-6, `${x} vs ${want[i]}`);
    });
  });

  it('rejects gradients that do not match the params', () => {
    const opt = new AdamW([param('w', f32([2, 2]))]);
    assert.throws(() => opt.step([f32([2, 3])]), /gradient \[2, 3\] does not match param/);
    assert.throws(() => opt.step([]), /got 0 gradients for 1 params/);
  });
});

describe('training end to end', () => {
  it('an MLP learns a nonlinear 2-D task (XOR of quadrant and radius) to low loss', async () => {
    const n = 256;
    const rng = new Rng(1);
    const xs = new Float32Array(2 * n);
    const ys = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const [a, b] = [2 * rng.uniform() - 1, 2 * rng.uniform() - 1];
      xs.set([a, b], 2 * i);
      ys[i] = +(a * b > 0) ^ +(a * a + b * b < 0.4);
    }
    const init = (name: string, shape: [number, number]) =>
      param(
        name,
        f32(
          shape,
          new Rng(name.length + shape[0]).fillNormal(
            new Float32Array(shape[0] * shape[1]),
            0,
            1 / Math.sqrt(shape[0]),
          ),
        ),
      );
    const ps = [
      init('w1', [2, 32]),
      param('b1', f32([32])),
      init('w2', [32, 32]),
      param('b2', f32([32])),
      init('w3', [32, 2]),
      param('b3', f32([2])),
    ];
    const [w1, b1, w2, b2, w3, b3] = ps as [Tensor, Tensor, Tensor, Tensor, Tensor, Tensor];
    const x = input('x', [n, 2]);
    const y = input('y', [n], 'int32');
    const logits = linear(gelu(linear(gelu(linear(x, w1, b1)), w2, b2)), w3, b3);
    const loss = crossEntropy(logits, y);
    const grads = grad(loss, ps);
    const step = await compile({ loss, ...Object.fromEntries(grads.map((g, k) => [`g${k}`, g])) });
    const opt = new AdamW(ps, { lr: 0.02, weightDecay: 0 });
    const feeds = { x: f32([n, 2], xs), y: i32([n], ys) };
    let first = 0;
    let last = 0;
    for (let it = 0; it < 400; it++) {
      const out = await step.run(feeds);
      last = out['loss']!.data[0] as number;
      if (it === 0) first = last;
      opt.step(grads.map((_, k) => out[`g${k}`]!));
    }
    assert.ok(first > 0.6, `initial loss ${first}`);
    assert.ok(last < 0.08, `final loss ${last}`);
  });
});
