/** Random sources: the right distribution (tolerances from the sample size), fresh values at every run, reproducible streams. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toNumbers } from '../../src/graph/ndarray.js';
import { NOISE_TABLE_SAMPLES, noiseTable } from '../../src/graph/noise-table.js';
import { noise, randomNormal, randomUniform } from '../../src/graph/tensor.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';

const N = 200_000;
/** 5 standard errors: a correct sampler fails one check in ~2 million runs. */
const Z = 5;

function moments(d: ArrayLike<number>): { mean: number; variance: number } {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]!;
  const mean = s / d.length;
  let v = 0;
  for (let i = 0; i < d.length; i++) v += (d[i]! - mean) ** 2;
  return { mean, variance: v / (d.length - 1) };
}

/** Checks mean and variance of normal samples against μ, σ² with standard errors σ/√n and σ²√(2/(n−1)). */
function assertNormal(d: ArrayLike<number>, mu: number, sigma: number): void {
  const { mean, variance } = moments(d);
  const n = d.length;
  assert.ok(Math.abs(mean - mu) <= (Z * sigma) / Math.sqrt(n), `mean ${mean} vs ${mu}`);
  assert.ok(
    Math.abs(variance - sigma ** 2) <= Z * sigma ** 2 * Math.sqrt(2 / (n - 1)),
    `variance ${variance} vs ${sigma ** 2}`,
  );
}

describe('randomNormal and randomUniform in ONNX Runtime', () => {
  it('randomNormal has the requested mean and std', async () => {
    const g = await compile({ r: randomNormal([N], { seed: 3, mean: 0.5, std: 2 }) }, { cache: false });
    assertNormal((await g.run()).r!.data as Float32Array, 0.5, 2);
  });

  it('randomUniform has the requested range, mean and variance', async () => {
    const [lo, hi] = [-1, 3];
    const g = await compile({ r: randomUniform([N], { seed: 4, low: lo, high: hi }) }, { cache: false });
    const d = (await g.run()).r!.data as Float32Array;
    assert.ok(d.every((v) => v >= lo && v <= hi));
    const { mean, variance } = moments(d);
    const sd = (hi - lo) / Math.sqrt(12);
    assert.ok(Math.abs(mean - (lo + hi) / 2) <= (Z * sd) / Math.sqrt(N), `mean ${mean}`);
    // Var of (x−μ)² for a uniform is E(x−μ)⁴ − σ⁴ = (h−l)⁴/80 − σ⁴
    const sdVar = Math.sqrt(((hi - lo) ** 4 / 80 - sd ** 4) / N);
    assert.ok(Math.abs(variance - sd ** 2) <= Z * sdVar, `variance ${variance}`);
  });

  it('gives fresh values at every run of one compiled graph', async () => {
    const g = await compile({ r: randomNormal([16], { seed: 5 }) }, { cache: false });
    const a = toNumbers((await g.run()).r!);
    const b = toNumbers((await g.run()).r!);
    assert.notDeepEqual(a, b);
  });

  it('repeats the stream for the same seed and changes it with the seed', async () => {
    const stream = async (seed: number) => {
      const g = await compile({ r: randomNormal([8], { seed }) }, { cache: false });
      return [...toNumbers((await g.run()).r!), ...toNumbers((await g.run()).r!)];
    };
    assert.deepEqual(await stream(7), await stream(7));
    assert.notDeepEqual(await stream(7), await stream(8));
  });
});

describe('noise leaves (windows of the noise table, fed at every run)', () => {
  it('has the requested std and mean (tolerances from the sample size)', async () => {
    const g = await compile({ r: noise([N], { seed: 3, std: 0.5 }) }, { cache: false });
    assertNormal((await g.run()).r!.data as Float32Array, 0, 0.5);
  });

  it('is a contiguous run of the table at a new, uniformly drawn offset every run', async () => {
    const g = await compile({ w: noise([4, 25], { seed: 11 }) }, { cache: false });
    const table = noiseTable(1);
    const offsets: number[] = [];
    for (let run = 0; run < 400; run++) {
      const w = (await g.run()).w!.data as Float32Array;
      // locate the window by its first value (float32 values repeat in a table of 2^24 samples)
      let start = table.indexOf(w[0]!);
      while (start >= 0 && (table[start + 1] !== w[1] || table[start + 2] !== w[2]))
        start = table.indexOf(w[0]!, start + 1);
      assert.ok(start >= 0 && start < NOISE_TABLE_SAMPLES, `window not found (${start})`);
      assert.deepEqual(w, table.subarray(start, start + 100));
      offsets.push(start);
    }
    assert.equal(new Set(offsets).size, offsets.length, 'two runs drew the same offset');
    // uniform on [0, L): χ² over 8 bins, 7 degrees of freedom, P(χ² > 24.3) ≈ 1e-3
    const bins = new Array<number>(8).fill(0);
    for (const o of offsets) bins[Math.floor((o / NOISE_TABLE_SAMPLES) * 8)]!++;
    const e = offsets.length / 8;
    const chi2 = bins.reduce((s, b) => s + (b - e) ** 2 / e, 0);
    assert.ok(chi2 < 24.3, `χ² = ${chi2.toFixed(1)}, bins ${bins}`);
  });

  it('repeats its stream for the same seed, changes it with the seed, and two leaves differ', async () => {
    const stream = async (seed: number) => {
      const g = await compile(
        { a: noise([8], { seed }), b: noise([8], { seed: seed + 1 }) },
        { cache: false },
      );
      const r1 = await g.run();
      const r2 = await g.run();
      assert.notDeepEqual(toNumbers(r1.a!), toNumbers(r1.b!));
      return [...toNumbers(r1.a!), ...toNumbers(r2.a!)];
    };
    assert.deepEqual(await stream(7), await stream(7));
    assert.notDeepEqual(await stream(7), await stream(9));
  });

  it('a cached session continues the stream across compiles, like RandomNormal', async () => {
    const leaf = () => ({ z: noise([5], { seed: 21 }) });
    const a = toNumbers((await (await compile(leaf())).run()).z!);
    const b = toNumbers((await (await compile(leaf())).run()).z!);
    assert.notDeepEqual(a, b);
  });

  it('refuses more samples than the table holds', () => {
    assert.throws(() => noise([NOISE_TABLE_SAMPLES + 1], { seed: 1 }), /exceed the noise table/);
  });
});

describe('Rng (the JavaScript stream for O(parameters) noise)', () => {
  it('normal() is standard normal', () => {
    assertNormal(new Rng(1).fillNormal(new Float64Array(N)), 0, 1);
  });
  it('is reproducible and seed-dependent', () => {
    const take = (s: number) => Array.from(new Rng(s).fillUniform(new Float64Array(5)));
    assert.deepEqual(take(9), take(9));
    assert.notDeepEqual(take(9), take(10));
  });
  it('gives a fixed stream (programmed weights and results depend on it)', () => {
    // xoshiro128**'s values, from a plain Uint32Array implementation of it
    const r = new Rng(2026);
    assert.deepEqual([r.nextU32(), r.nextU32(), r.nextU32()], [1436751614, 742089593, 1736781944]);
    assert.equal(r.uniform(), 0.3056706077492153);
    assert.deepEqual(
      [r.normal(), r.normal(), r.normal()],
      [0.7374370658512547, 0.5057853292880691, 0.10662000212315713],
    );
  });
});
