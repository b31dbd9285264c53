/** The attention-block SNR: graph outputs against a value computed by hand. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostArray } from '../../src/graph/ndarray.js';
import { constant, input } from '../../src/graph/tensor.js';
import { AttentionSnr, snrDb } from '../../src/methods/snr.js';
import { digital, type Matmuls } from '../../src/models/encoder.js';
import { compile } from '../../src/runtime/session.js';

const softmaxRow = (r: number[]) => {
  const m = Math.max(...r);
  const e = r.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
};

describe('attention SNR', () => {
  it('equals 10·log10(‖X‖²/‖X − X̃‖²) by hand, X from the ideal network, with a mask', async () => {
    // one head, 2 queries, 3 keys, width 2; Q comes from a linear layer, on which the network
    // under test errs too: X is the ideal network's (its own Q), not the tested one's
    const qv = [1, 0, 0.5, -1];
    const kTv = [1, -1, 0.5, 0, 2, 1]; // [2, 3]
    const vv = [1, 2, -1, 0, 0.5, 0.5]; // [3, 2]
    const mask = [0, 0, -1e4, 0, 0, 0]; // query 0 may not see key 2
    const dq = 0.2; // the tested network's error on Q
    const ds = [0.3, -0.2, 0.1, 0, 0.4, -0.1]; // its score error
    const dx = 0.05; // its output offset
    const inner: Matmuls = {
      linear: (n, x, w) => digital.linear(n, x, w).add(dq),
      scores: (n, q, kT) =>
        digital.scores(n, q, kT).add(constant(hostArray('float32', [1, 1, 2, 3], Float32Array.from(ds)))),
      mix: (n, p, v) => digital.mix(n, p, v).add(dx),
    };
    const x0 = input('x0', [1, 1, 2, 2]);
    const kT = input('kT', [1, 1, 2, 3]);
    const v = input('v', [1, 1, 3, 2]);
    const forward = (m: Matmuls) => {
      const q = m.linear(
        'layer.0.query',
        x0,
        constant(hostArray('float32', [2, 2], Float32Array.from([1, 0, 0, 1]))),
      );
      const s = m
        .scores('layer.0.scores', q, kT)
        .add(constant(hostArray('float32', [1, 1, 2, 3], Float32Array.from(mask))));
      return m.mix('layer.0.mix', s.softmax(-1), v);
    };
    const snr = new AttentionSnr(inner);
    const x = forward(snr.matmuls());
    const g = await compile({ x, ...snr.outputs(forward) }, { cache: false });
    const feeds = {
      x0: hostArray('float32', [1, 1, 2, 2], Float32Array.from(qv)),
      kT: hostArray('float32', [1, 1, 2, 3], Float32Array.from(kTv)),
      v: hostArray('float32', [1, 1, 3, 2], Float32Array.from(vv)),
    };
    snr.add(await g.run(feeds));
    snr.add(await g.run(feeds)); // sums accumulate over batches; the ratio stays

    // by hand
    let signal = 0;
    let noise = 0;
    const scores = (q: number[], i: number) =>
      [0, 1, 2].map((j) => q[i * 2]! * kTv[j]! + q[i * 2 + 1]! * kTv[3 + j]! + mask[i * 3 + j]!);
    const qa = qv.map((e) => e + dq);
    for (let i = 0; i < 2; i++) {
      const pe = softmaxRow(scores(qv, i));
      const pa = softmaxRow(scores(qa, i).map((e, j) => e + ds[i * 3 + j]!));
      for (let c = 0; c < 2; c++) {
        const xe = pe.reduce((a, p, j) => a + p * vv[j * 2 + c]!, 0);
        const xa = pa.reduce((a, p, j) => a + p * vv[j * 2 + c]!, 0) + dx;
        signal += xe * xe;
        noise += (xe - xa) ** 2;
      }
    }
    const [r] = snr.result();
    assert.equal(r!.block, 'layer.0');
    assert.ok(Math.abs(r!.signal - 2 * signal) < 1e-5 * signal, `signal ${r!.signal} vs ${2 * signal}`);
    assert.ok(Math.abs(r!.noise - 2 * noise) < 1e-4 * noise, `noise ${r!.noise} vs ${2 * noise}`);
    assert.ok(Math.abs(r!.snrDb - snrDb(signal, noise)) < 1e-3);
  });
});
