/** Random sources: the right distribution (tolerances from the sample size), fresh values at every run, reproducible streams. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { toNumbers } from '../../src/graph/ndarray.js';
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

describe('noise leaves (sample-keyed, filled by the runtime at every run)', () => {
  it('has the requested std and mean (tolerances from the sample size)', async () => {
    const g = await compile(
      { r: noise([4, N / 4], { seed: 3, std: 0.5, batchAxis: 0, batch: 4 }) },
      { cache: false },
    );
    assertNormal((await g.run()).r!.data as Float32Array, 0, 0.5);
  });

  it('gives a sample the same values in any batch, and other samples and seeds other values', async () => {
    // [slices 2, rows 3 × tokens 5, columns 7]: samples lie along axis 1, 5 entries each
    const leaf = (batch: number, seed = 11) =>
      compile({ z: noise([2, 5 * batch, 7], { seed, batchAxis: 1, batch }) }, { cache: false });
    const rowsOf = (z: Float32Array, batch: number, b: number) =>
      [0, 1].flatMap((j) => [...z.subarray((j * 5 * batch + 5 * b) * 7, (j * 5 * batch + 5 * b + 5) * 7)]);
    const four = (await (await leaf(4)).run({}, 10)).z!.data as Float32Array;
    const one = await leaf(1);
    for (let b = 0; b < 4; b++) {
      const alone = (await one.run({}, 10 + b)).z!.data as Float32Array;
      assert.deepEqual(rowsOf(alone, 1, 0), rowsOf(four, 4, b), `sample ${10 + b}`);
    }
    assert.notDeepEqual(rowsOf(four, 4, 0), rowsOf(four, 4, 1));
    const other = (await (await leaf(4, 12)).run({}, 10)).z!.data as Float32Array;
    assert.notDeepEqual(rowsOf(other, 4, 0), rowsOf(four, 4, 0));
  });

  it('lowers two leaves of the same attributes to one input (they hold the same values)', async () => {
    const leaf = (seed: number) => noise([2, 3], { seed, batchAxis: 0, batch: 2 });
    const g = await compile({ a: leaf(5), b: leaf(5), c: leaf(6) }, { cache: false });
    assert.equal(g.inputs.filter((i) => i.noise).length, 2);
    const r = await g.run({}, 4);
    assert.deepEqual(toNumbers(r.a!), toNumbers(r.b!));
    assert.notDeepEqual(toNumbers(r.a!), toNumbers(r.c!));
  });

  it('refuses a batch axis that is the last or does not hold the batch', () => {
    assert.throws(
      () => noise([4, 6], { seed: 1, batchAxis: 1, batch: 2 }),
      /batch axis 1 of \[4, 6\] cannot hold 2 samples/,
    );
    assert.throws(() => noise([4, 6], { seed: 1, batchAxis: 0, batch: 3 }), /cannot hold 3 samples/);
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
