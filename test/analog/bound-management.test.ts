/**
 * Iterative bound management (aihwkit's forward.bound_management = ITERATIVE): hand-computable
 * cases with noise off, the stopping rule, per-column-tile selection, 'none' against the
 * outputs from before it existed, and the noise of a re-run round against its formula.
 * (Exact parity with aihwkit 1.0.0 itself: test/analog/aihwkit.test.ts, default_io_mapped_bm.)
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { boundManagementRounds, saturationThreshold, topCodeSaturates } from '../../src/analog/adc.js';
import * as analogModel from '../../src/analog/analog-model.js';
import * as dynamic from '../../src/analog/dynamic.js';
import * as presets from '../../src/analog/presets.js';
import { Crossbar } from '../../src/analog/spec.js';
import * as ndarray from '../../src/graph/ndarray.js';
import * as tensor from '../../src/graph/tensor.js';
import { useNativeKernels } from '../../src/runtime/native.js';
import * as session from '../../src/runtime/session.js';
import * as math from '../../src/util/math.js';

const { AnalogModel } = analogModel;
const { loadSpec } = presets;
const { hostArray } = ndarray;
const { input, param } = tensor;
const { compile } = session;
const Z = 5;

/** x·W through crossbars of `ideal` + `sets`: x [n, in] row-major, W [in, out] row-major. */
async function mvm(sets: string[], x: number[][], w: number[][], seed = 0): Promise<number[][]> {
  const [n, inD, outD] = [x.length, w.length, w[0]!.length];
  const wa = hostArray('float32', [inD, outD], Float32Array.from(w.flat()));
  const xa = hostArray('float32', [n, inD], Float32Array.from(x.flat()));
  const y = new AnalogModel(loadSpec('ideal', sets), seed).linear(
    'layer.0.ffnIn',
    input('x', [n, inD]),
    param('w', wa),
  );
  const g = await compile({ y }, { cache: false });
  const d = (await g.run({ x: xa }))['y']!.data as Float32Array;
  return Array.from({ length: n }, (_, i) => Array.from(d.subarray(i * outD, (i + 1) * outD)));
}

// one 4×2 tile, W unscaled, 7-bit DAC over a fixed range 1 (so halving the input is visible),
// 9-bit ADC saturating at ±2: codes step 2/255
const base = (bm: string) => [
  'tile={rows: 4, cols: 2}',
  'mapping.scale=none',
  'dac={kind: uniform, bits: 7, range: {kind: fixed, max: 1}}',
  `adc={kind: uniform, bits: 9, range: {kind: fixed, max: 2}, boundManagement: ${bm}}`,
];
const W = [
  [1, 0.25],
  [1, 0.25],
  [1, 0.25],
  [1, 0.25],
];
/** The pipeline by hand in float64: DAC codes of x/divisor, the column sums, the ADC code, back. */
function byHand(x: number[], col: number, divisor: number, w = W): number {
  const codes = x.map((v) => Math.round((v / divisor) * 63));
  const y = codes.reduce((s, c, j) => s + (c / 63) * w[j]![col]!, 0);
  const code = Math.max(-255, Math.min(255, Math.round(y / (2 / 255))));
  return code * (2 / 255) * divisor;
}

describe('iterative bound management, no noise', () => {
  const iterative = base('{kind: iterative}');
  const saturating = [0.9, 0.8, 0.7, 0.6]; // column 0 sums to 3.0 > 2; halved to 1.5 it fits
  const quiet = [0.3, -0.2, 0.1, 0.4]; // sums to 0.6: never saturates

  it('a saturating vector gives exactly the halved input’s result times 2, in every column', async () => {
    const [got] = await mvm(iterative, [saturating], W);
    const [halved] = await mvm(base('{kind: none}'), [saturating.map((v) => v / 2)], W);
    assert.deepEqual(
      got,
      halved!.map((v) => Math.fround(v * 2)),
    );
    // by hand: x/2 → DAC codes round(31.5·x) → Σ → ADC code → × 2
    for (const col of [0, 1]) assert.ok(Math.abs(got![col]! - byHand(saturating, col, 2)) < 1e-6);
    assert.ok(Math.abs(got![0]! - 3) < 0.02); // the clipped value would be 2
  });

  it('a vector that does not saturate is unchanged, bit for bit, beside one that does', async () => {
    const [, got] = await mvm(iterative, [saturating, quiet], W);
    const [, want] = await mvm(base('{kind: none}'), [saturating, quiet], W);
    assert.deepEqual(got, want);
    assert.ok(Math.abs(got![0]! - byHand(quiet, 0, 1)) < 1e-6);
  });

  it('stops at the limit: the last round is taken, clipped, when saturation persists', async () => {
    const big = W.map((r) => r.map((v) => v * 10)); // column 0 sums to 30 (× 0.9..0.6)
    // maxFactor 2: divisors 1, 2, 4 (the first above 2 is the last round)
    const [got] = await mvm(base('{kind: iterative, maxFactor: 2}'), [saturating], big);
    assert.ok(Math.abs(got![0]! - 2 * 4) < 1e-6, `${got![0]}`); // saturated in every round
    assert.ok(Math.abs(got![1]! - byHand(saturating, 1, 4, big)) < 1e-5, `${got![1]}`);
    // minInputLevels 8 with 63 DAC levels: divisors up to 8 (63/8 < 8 levels ends it)
    const [g2] = await mvm(base('{kind: iterative, minInputLevels: 8}'), [saturating], big);
    assert.ok(Math.abs(g2![0]! - 2 * 8) < 1e-6, `${g2![0]}`);
  });

  it('counts rounds as aihwkit does: divisors up to the first above min(maxFactor, levels/minInputLevels)', () => {
    const xbar = (sets: string[]) => loadSpec('ideal', sets).crossbar('layer.0.ffnIn');
    assert.equal(boundManagementRounds(loadSpec('pcm-aihwkit').crossbar('x')), 5); // 1..16
    assert.equal(boundManagementRounds(xbar(base('{kind: none}'))), 1);
    assert.equal(boundManagementRounds(xbar(base('{kind: iterative, maxFactor: 2}'))), 3);
    // an ideal DAC has no resolution limit: 1, 2, …, 1024 for maxFactor 1000
    const idealDac = [
      'adc={kind: uniform, bits: 9, range: {kind: fixed, max: 2}, boundManagement: {kind: iterative}}',
    ];
    assert.equal(boundManagementRounds(xbar(idealDac)), 11);
  });

  it('tests saturation on the code rounded half to even, with aihwkit’s float32 bound test', () => {
    // 255.5 rounds to 256 (saturated): the threshold is the float32 just below it
    assert.equal(saturationThreshold(255), 255.5 - 2 ** -16);
    assert.equal(saturationThreshold(0), 0.5); // 0.5 rounds to 0: not saturated
    // aihwkit's 9-bit ADC over ±12 reads its top code as 12.000001 > 12: reaching it saturates;
    // 254.5 rounds to 254 (even), so the threshold is 254.5 itself
    assert.ok(topCodeSaturates(255, 12) && !topCodeSaturates(255, 2) && !topCodeSaturates(127, 12));
    assert.equal(saturationThreshold(255, true), 254.5);
  });

  it('with 9 bits over ±12, an output at the top code is re-run (as aihwkit does)', async () => {
    // x = 1 on one weight of 12: y = 12 exactly, the top code (255 steps of 12/255), not beyond
    const sets = [
      'tile={rows: 1, cols: 1}',
      'mapping.scale=none',
      'dac={kind: uniform, bits: 7, range: {kind: fixed, max: 1}}',
      'adc={kind: uniform, bits: 9, range: {kind: fixed, max: 12}, boundManagement: {kind: iterative}}',
    ];
    const x = 1; // DAC code 63: the normalised input is exactly 1
    const [got] = await mvm(sets, [[x]], [[12]]);
    const [none] = await mvm([...sets.slice(0, 3), sets[3]!.replace('iterative', 'none')], [[x]], [[12]]);
    assert.equal(none![0], 12);
    // re-run at divisor 2: DAC code of 0.5 is 31 (aihwkit's float32 step), y = 12·31/63 → × 2
    const want = Math.round(((12 * 31) / 63) * (255 / 12)) * (12 / 255) * 2;
    assert.ok(Math.abs(got![0]! - want) < 1e-5, `${got![0]} vs ${want}`);
  });

  it('re-runs per column tile: a tile that does not saturate keeps its first-round values', async () => {
    // 5 columns in tiles of 3 and 2 ('even' split of 5 over cols 3); only the second saturates
    const w5 = W.map(() => [0.1, -0.2, 0.3, 1, 0.5]);
    const sets = (bm: string) => [
      ...base(bm).slice(1),
      'tile={rows: 4, cols: 3, split: even}',
      'outputNoise={kind: gaussian, sigma: 0.01}',
    ];
    const [got] = await mvm(sets('{kind: iterative}'), [saturating], w5, 7);
    const [none] = await mvm(sets('{kind: none}'), [saturating], w5, 7);
    assert.deepEqual(got!.slice(0, 3), none!.slice(0, 3)); // same noise, same codes
    assert.ok(Math.abs(none![3]! - 2) < 1e-6 && Math.abs(got![3]! - 3) < 0.05, `${got}`);
  });
});

/** A JSON fixture of test/fixtures/analog. */
const readFixture = <T>(name: string): T =>
  JSON.parse(
    readFileSync(fileURLToPath(new URL(`../../../test/fixtures/analog/${name}`, import.meta.url)), 'utf8'),
  ) as T;

describe('against an independent NumPy implementation (scripts/reference/bound_management.py)', () => {
  it('pcm-aihwkit IO, no noise: quiet, divisor 4, every round to the limit, the top code', async () => {
    const ref = readFixture<{ W: number[][]; X: number[][]; Y: number[][]; divisors: number[] }>(
      'bm-numpy.json',
    );
    assert.deepEqual(ref.divisors, [1, 4, 16, 2]);
    const wT = ref.W[0]!.map((_, j) => ref.W.map((row) => row[j]!)); // [out, in] → [in, out]
    const sets = [
      'mapping.scale=none',
      'dac={kind: uniform, bits: 7, mode: pwm}',
      'adc={kind: uniform, bits: 9, range: {kind: fixed, max: 12}, boundManagement: {kind: iterative}}',
    ];
    const got = await mvm(sets, ref.X, wT);
    const scale = Math.max(...ref.Y.flat().map(Math.abs));
    const err = Math.max(...ref.Y.flatMap((row, i) => row.map((v, j) => Math.abs(got[i]![j]! - v))));
    assert.ok(err <= 2e-5 * scale, `max |Δ| ${err} (scale ${scale})`);
  });
});

describe('bound management with noise', () => {
  it("'none' keeps the outputs from before bound management bit for bit (fixture)", async () => {
    const fixture = readFixture<{ cases: Record<string, number[]> }>('bm-none.json');
    const { CASES } = (await import(
      new URL('../../../scripts/reference/bm-none-cases.mjs', import.meta.url).href
    )) as { CASES: { name: string; run: (lib: object, sets: string[]) => Promise<Float32Array> }[] };
    const lib = {
      ...analogModel,
      ...dynamic,
      ...presets,
      ...ndarray,
      ...tensor,
      ...session,
      ...math,
    };
    const none = ['adc.boundManagement.kind=none'];
    // the fixture holds the ONNX graphs' numbers (the native kernel may round an output on an ADC edge otherwise)
    const native = useNativeKernels(false);
    try {
      for (const c of CASES) {
        const sets = c.name.startsWith('pcm-aihwkit') ? none : [];
        assert.deepEqual(Array.from(await c.run(lib, sets)), fixture.cases[c.name], c.name);
      }
    } finally {
      useNativeKernels(native);
    }
    // the saturating case does change with bound management on
    const sat = CASES.find((c) => c.name.endsWith('saturating'))!;
    assert.notDeepEqual(Array.from(await sat.run(lib, [])), fixture.cases[sat.name]);
  });

  it('a re-run round draws fresh output noise, scaled back up with the result: std 2σ', async () => {
    // N copies of one vector whose column 0 saturates (sum 3.0 > 2) and whose column 1 does not
    // (0.75): column 0 is the round at divisor 2, so its noise is 2σ; column 1 keeps σ
    const n = 4000;
    const sigma = 0.05;
    const sets = [
      'tile={rows: 4, cols: 1}', // one column per tile: each column decides alone
      'mapping.scale=none',
      'dac={kind: uniform, bits: 7, range: {kind: fixed, max: 1}}',
      'adc={kind: uniform, bits: 16, range: {kind: fixed, max: 2}, boundManagement: {kind: iterative}}',
      `outputNoise={kind: gaussian, sigma: ${sigma}}`,
    ];
    const x = [0.9, 0.8, 0.7, 0.6];
    const y = await mvm(
      sets,
      Array.from({ length: n }, () => x),
      W,
      3,
    );
    const stats = (col: number) => {
      const v = y.map((r) => r[col]!);
      const mean = v.reduce((a, b) => a + b, 0) / n;
      const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1));
      return { mean, std };
    };
    const step = 2 / 32767; // ADC step: its rounding adds step²/12 per round, × divisor²
    for (const [col, divisor, clean] of [
      [0, 2, 1.5 * 2],
      [1, 1, 0.75],
    ] as const) {
      // the clean value: DAC codes of x/divisor, summed (W column), × divisor
      const exact = x.reduce((s, v) => s + Math.round((v / divisor) * 63) / 63, 0) * W[0]![col]! * divisor;
      assert.ok(Math.abs(exact - clean) < 0.02);
      const s = divisor * Math.sqrt(sigma ** 2 + step ** 2 / 12);
      const { mean, std } = stats(col);
      assert.ok(Math.abs(mean - exact) <= (Z * s) / Math.sqrt(n), `column ${col}: mean ${mean} vs ${exact}`);
      assert.ok(Math.abs(std - s) <= (Z * s) / Math.sqrt(2 * (n - 1)), `column ${col}: std ${std} vs ${s}`);
    }
  });
});

describe('spec', () => {
  it('pcm-aihwkit sets aihwkit’s defaults; other presets keep none', () => {
    for (const name of presets.PRESET_NAMES) {
      const adc = loadSpec(name).spec.adc;
      const bm = adc.kind === 'uniform' ? adc.boundManagement : { kind: 'none' };
      assert.deepEqual(
        bm,
        name === 'pcm-aihwkit' ? { kind: 'iterative', maxFactor: 1000, minInputLevels: 4 } : { kind: 'none' },
        name,
      );
    }
    assert.ok(JSON.stringify(presets.specDiff(loadSpec('pcm-aihwkit').spec)).includes('"boundManagement"'));
  });

  it('rejects bad limits with the field and what is allowed', () => {
    assert.throws(
      () => loadSpec('pcm-aihwkit', ['adc.boundManagement.maxFactor=0']),
      /adc\.boundManagement\.maxFactor/,
    );
    assert.throws(
      () => loadSpec('pcm-aihwkit', ['adc.boundManagement.minInputLevels=-1']),
      /adc\.boundManagement\.minInputLevels.*> 0/,
    );
    assert.throws(() =>
      Crossbar.parse({ adc: { kind: 'uniform', bits: 8, boundManagement: { kind: 'halving' } } }),
    );
  });
});
