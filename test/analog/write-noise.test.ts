/**
 * Programming noise: each kind's two forms (one device in float64 for static weights, tensors in
 * float32 for K/V writes) compute the same conductances from the same draws, and the device form
 * draws once per device (none for 'none'), which fixes where each device's draw sits in its stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Crossbar } from '../../src/analog/spec.js';
import { WRITE_KINDS, type WriteKind, writeKindOf } from '../../src/analog/write-noise.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { input } from '../../src/graph/tensor.js';
import { compile, feedsFor } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';

const PROGRAMS = {
  none: { kind: 'none' },
  relative: { kind: 'relative', sigma: 0.2 },
  writeSqrt: { kind: 'writeSqrt', gamma: 3, sigma: 0.1 },
  additive: { kind: 'additive', sigma: 0.05 },
  pcm: { kind: 'pcm', scale: 1.3 },
} satisfies { [K in WriteKind]: { kind: K } & Record<string, unknown> };

describe('programming noise', () => {
  it('each kind gives the same conductances on one device and on tensors, from the same draws', async () => {
    assert.deepEqual(Object.keys(PROGRAMS).sort(), Object.keys(WRITE_KINDS).sort());
    const n = 2000;
    for (const mapping of [
      { gMinUS: 0.1, gMaxUS: 10 },
      { gMinUS: 0, gMaxUS: 25 },
    ]) {
      for (const program of Object.values(PROGRAMS)) {
        const x = Crossbar.parse({ mapping, program });
        const targets = Float32Array.from({ length: n }, (_, i) => mapping.gMinUS + (i / n) * mapping.gMaxUS);
        const rng = new Rng(7);
        const write = writeKindOf(x).device(x.program, x.mapping);
        const device = Float64Array.from(targets, (g) => write(g, rng));
        const draws = new Rng(7).fillNormal(new Float32Array(n));
        const g = input('g', [n]);
        const xi = input('xi', [n]);
        const graph = await compile(
          { y: writeKindOf(x).tensor(x.program, x.mapping)(g, xi) },
          { cache: false },
        );
        const feeds = { g: hostArray('float32', [n], targets), xi: hostArray('float32', [n], draws) };
        const out = await graph.run(feedsFor(graph, feeds));
        const y = out['y']!.data as Float32Array;
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[i]! - device[i]!));
        assert.ok(worst <= 1e-5 * mapping.gMaxUS, `${program.kind}: tensors differ by ${worst} µS`);
        const spread = device.reduce((m, v, i) => Math.max(m, Math.abs(v - targets[i]!)), 0);
        assert.equal(spread > 0, program.kind !== 'none', `${program.kind}: noise drawn`);
        // one draw per device, or none: the next draw is the stream's (n+1)-th, or its first
        const next = new Rng(7);
        if (program.kind !== 'none') next.fillNormal(new Float64Array(n));
        assert.equal(rng.normal(), next.normal(), `${program.kind}: draws per device`);
      }
    }
  });
});
