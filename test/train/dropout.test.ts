/** Hidden dropout: the drop rate, the scaling that keeps the mean, fresh masks per run, and where it applies. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hostArray } from '../../src/graph/ndarray.js';
import { input } from '../../src/graph/tensor.js';
import { digital } from '../../src/models/encoder.js';
import { compile } from '../../src/runtime/session.js';
import { dropout, withDropout } from '../../src/train/dropout.js';

const N = 200_000;

describe('dropout', () => {
  it('zeros a fraction p of the values and scales the rest by 1/(1−p); a new mask every run', async () => {
    const p = 0.3;
    const x = input('x', [N]);
    const g = await compile({ y: dropout(x, p, 11) });
    const ones = hostArray('float32', [N], new Float32Array(N).fill(1));
    const a = (await g.run({ x: ones }))['y']!.data as Float32Array;
    const b = (await g.run({ x: ones }))['y']!.data as Float32Array;
    const zeros = a.filter((v) => v === 0).length;
    // binomial: sd of the count is sqrt(N p (1−p)); 5 sd
    assert.ok(Math.abs(zeros - N * p) < 5 * Math.sqrt(N * p * (1 - p)), `zeros ${zeros}`);
    for (const v of a) assert.ok(v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6, `value ${v}`);
    let same = 0;
    for (let i = 0; i < N; i++) if ((a[i] === 0) === (b[i] === 0)) same++;
    // independent masks agree with probability p² + (1−p)² = 0.58; identical ones always would
    assert.ok(same < 0.6 * N, `masks agree on ${same} of ${N}`);
  });

  it('is the identity at p = 0 and rejects p outside [0, 1)', () => {
    const x = input('x', [4]);
    assert.equal(dropout(x, 0, 1), x);
    assert.throws(() => dropout(x, 1, 1), /dropout 1: use a probability in \[0, 1\)/);
  });

  it('applies after the residual-feeding layers only (attention output, second MLP matrix)', () => {
    const m = withDropout(digital, 0.1, 3);
    const x = input('x', [2, 4]);
    const w = input('w', [4, 4]);
    const ops = (name: string) => {
      const seen: string[] = [];
      const walk = (t: { op: string; inputs: readonly unknown[] }) => {
        seen.push(t.op);
        for (const i of t.inputs) walk(i as typeof t);
      };
      walk(m.linear(name, x, w) as unknown as { op: string; inputs: readonly unknown[] });
      return seen;
    };
    for (const n of ['layer.0.output', 'layer.3.ffnOut']) assert.ok(ops(n).includes('randomUniform'), n);
    for (const n of ['layer.0.query', 'layer.0.ffnIn', 'classifier'])
      assert.ok(!ops(n).includes('randomUniform'), n);
  });
});
