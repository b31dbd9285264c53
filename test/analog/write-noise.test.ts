/**
 * Programming noise: each kind's two forms (one device in float64 for static weights, tensors in
 * float32 for K/V writes) compute the same conductances from the same draws, and the device form
 * draws once per device (none for 'none'), which fixes where each device's draw sits in its stream.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Crossbar } from '../../src/analog/spec.js';
import { VALUE_WRITE, WRITE_KINDS, type WriteKind, writeKindOf } from '../../src/analog/write-noise.js';
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

  // ClipFormer's law: G' = G + γ·sqrt((G − G_MIN)(G_MAX − G_MIN))·n_W, n_W ~ N(0, σ_W²)
  const clipformer = (gamma: number) =>
    Crossbar.parse({
      mapping: { gMinUS: 0.1, gMaxUS: 10 },
      program: { kind: 'writeSqrt', gamma, sigma: 0.1 },
    });

  it("ClipFormer's law: G' − G has mean 0 and variance γ²σ_W²(G − G_MIN)(G_MAX − G_MIN)", () => {
    const n = 40000;
    for (const [gamma, frac] of [
      [1, 0.3],
      [3, 0.9],
    ] as const) {
      const x = clipformer(gamma);
      const write = writeKindOf(x).device(x.program, x.mapping);
      const g = 0.1 + frac * 9.9;
      const rng = new Rng(11);
      const d = Float64Array.from({ length: n }, () => write(g, rng) - g);
      const mean = d.reduce((a, v) => a + v, 0) / n;
      const variance = d.reduce((a, v) => a + (v - mean) ** 2, 0) / (n - 1);
      const want = gamma ** 2 * 0.01 * (g - 0.1) * 9.9;
      // 5 standard errors: of the mean √(v/n), of a normal sample's variance v·√(2/(n − 1)); the
      // floor at G_MIN lies ≥ 3.1 σ below (it moves the variance by < 0.1 %)
      assert.ok(Math.abs(mean) <= 5 * Math.sqrt(want / n), `γ ${gamma}: mean ${mean}`);
      assert.ok(
        Math.abs(variance - want) <= 5 * want * Math.sqrt(2 / (n - 1)) + 1e-3 * want,
        `γ ${gamma}, G ${g}: variance ${variance} vs ${want}`,
      );
    }
  });

  it("ClipFormer's law is floored at G_MIN: a device never goes below it, and those that would sit at it", () => {
    const x = clipformer(3);
    const write = writeKindOf(x).device(x.program, x.mapping);
    const n = 40000;
    const g = 0.1 + 0.09 * 9.9; // std 0.3·sqrt(0.09)·ΔG = 0.09·ΔG: 1 std above G_MIN
    const rng = new Rng(5);
    const out = Float64Array.from({ length: n }, () => write(g, rng));
    assert.equal(Math.min(...out), 0.1);
    // P(ξ < −1) = 0.158655: the share at G_MIN, within 5 binomial standard errors
    const share = out.filter((v) => v === 0.1).length / n;
    const p = 0.158655;
    assert.ok(Math.abs(share - p) <= 5 * Math.sqrt((p * (1 - p)) / n), `share at G_MIN ${share}`);
    // at G_MIN itself the law writes G_MIN exactly
    assert.equal(write(0.1, rng), 0.1);
  });

  it('per value: one device at G_MIN + f·ΔG, capped at G_MAX; the same fractions on one device and on tensors', async () => {
    const x = clipformer(3);
    const n = 2000;
    const f = Float32Array.from({ length: n }, (_, i) => i / (n - 1));
    const rng = new Rng(3);
    const device = VALUE_WRITE.device(x);
    const one = Float64Array.from(f, (v) => device(v, rng));
    const draws = new Rng(3).fillNormal(new Float32Array(n));
    const graph = await compile(
      { y: VALUE_WRITE.tensor(x)(input('f', [n]), input('xi', [n])) },
      { cache: false },
    );
    const y = (await graph.run({ f: hostArray('float32', [n], f), xi: hostArray('float32', [n], draws) }))[
      'y'
    ]!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[i]! - one[i]!));
    assert.ok(worst <= 1e-5, `tensors differ by ${worst}`);
    // within [0, 1]: floored at G_MIN, capped at G_MAX, both reached at γ = 3
    assert.equal(Math.min(...one), 0);
    assert.equal(Math.max(...one), 1);
    assert.ok(one.some((v) => v > 0 && v < 1));
  });
});
