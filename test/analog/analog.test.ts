/**
 * The analog model against its formulas: exactness where nothing is non-ideal, quantiser
 * levels, bit-serial × bit-sliced arithmetic, and noise statistics with tolerances derived
 * from the sample size (5 standard errors).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { dac } from '../../src/analog/dac.js';
import { dynamicProduct } from '../../src/analog/dynamic.js';
import { loadSpec } from '../../src/analog/presets.js';
import { products } from '../../src/analog/products.js';
import { cellCodes, programWeights, splitDim } from '../../src/analog/program.js';
import { Crossbar } from '../../src/analog/spec.js';
import { batchBalance, tiledMatmul } from '../../src/analog/tiling.js';
import { Predictor } from '../../src/eval/predict.js';
import { type HostArray, hostArray, toNumbers } from '../../src/graph/ndarray.js';
import { input, param } from '../../src/graph/tensor.js';
import { loadModel } from '../../src/models/index.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';
import { maxRelErr } from '../helpers/check.js';
import { FIXTURES } from '../models/parity.test.js';

const Z = 5;
const randn = (shape: number[], seed: number, std = 1) =>
  hostArray(
    'float32',
    shape,
    new Rng(seed).fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 0, std),
  );
const xbarOf = (fields: Record<string, unknown>) => Crossbar.parse(fields);
function moments(d: ArrayLike<number>) {
  let s = 0;
  for (let i = 0; i < d.length; i++) s += d[i]!;
  const mean = s / d.length;
  let v = 0;
  for (let i = 0; i < d.length; i++) v += (d[i]! - mean) ** 2;
  return { mean, std: Math.sqrt(v / (d.length - 1)) };
}
/** |mean − μ| ≤ Zσ/√n and |s − σ| ≤ Zσ/√(2(n−1)) for normal samples. */
function assertNormal(d: ArrayLike<number>, mu: number, sigma: number, what: string) {
  const { mean, std } = moments(d);
  const n = d.length;
  assert.ok(Math.abs(mean - mu) <= (Z * sigma) / Math.sqrt(n) + 1e-9, `${what}: mean ${mean} vs ${mu}`);
  assert.ok(
    Math.abs(std - sigma) <= (Z * sigma) / Math.sqrt(2 * (n - 1)) + 1e-9,
    `${what}: std ${std} vs ${sigma}`,
  );
}

async function logitsOf(name: string, specName: string, sets: string[] = []) {
  const dir = join(FIXTURES, name);
  const model = loadModel(dir);
  const rng = new Rng(4);
  const inputs: Record<string, HostArray> =
    model.config.family === 'vit'
      ? { pixel_values: randn([2, model.config.channels, model.config.imageSize, model.config.imageSize], 5) }
      : {
          input_ids: hostArray(
            'int32',
            [2, 7],
            Int32Array.from({ length: 14 }, () => 3 + Math.floor(rng.uniform() * 50)),
          ),
        };
  const exact = await new Predictor(model).logits(inputs);
  const am = new AnalogModel(loadSpec(specName, sets), 1);
  const analog = await new Predictor(model, { matmuls: am.matmuls() }).logits(inputs);
  return { exact, analog, am, model, inputs };
}

describe('exactness', () => {
  for (const name of ['vit', 'deit-distilled', 'bert', 'roberta']) {
    it(`ideal equals the floating-point ${name} model`, async () => {
      const { exact, analog } = await logitsOf(name, 'ideal');
      assert.ok(maxRelErr(analog.data as Float32Array, exact.data as Float32Array) <= 1e-5);
    });
  }
  it('tiled crossbars with nothing non-ideal (static and K/V) compute the same logits', async () => {
    const sets = [
      'mapping.clip={kind: fixed, max: 1e9}',
      'tile.rows=16',
      'tile.cols=8',
      'tile.split=fixed',
      'attention={kind: crossbar}',
    ];
    const { exact, analog } = await logitsOf('vit', 'ideal', sets);
    assert.ok(maxRelErr(analog.data as Float32Array, exact.data as Float32Array) <= 1e-5);
  });
  it('splits tiles as fixed blocks or evenly (aihwkit)', () => {
    assert.deepEqual(
      splitDim(700, 512, 'even').map((s) => s.size),
      [350, 350],
    );
    assert.deepEqual(
      splitDim(700, 512, 'fixed').map((s) => s.size),
      [512, 188],
    );
    assert.deepEqual(
      splitDim(1537, 512, 'even').map((s) => s.size),
      [385, 384, 384, 384],
    );
  });
  it('row tiles of a batch split into blocks of rows (for the thread pool) give the same numbers', async () => {
    // 3 row tiles × 768 vectors on 2 threads: 3 GEMMs take 2 rounds, 6 take 3 full ones
    const rng = new Rng(3);
    const a = input('a', [3, 768, 512]);
    const b = input('b', [1, 3, 512, 40]);
    const split = tiledMatmul(a, b, 2);
    assert.deepEqual(split.inputs[0]!.inputs[0]!.shape, [3, 2, 384, 512], 'the product is split');
    // on 16 threads: 3 GEMMs get 6 parts each (18 parts, 2 rounds); 4 blocks make 12 GEMMs of 2
    // parts (24 parts, 2 rounds, 3/4 busy); no divisor of 768 with ≥ 64 rows does better
    assert.deepEqual(tiledMatmul(a, b, 16).inputs[0]!.inputs[0]!.shape, [3, 4, 192, 512]);
    assert.equal(batchBalance(3, 2), 0.75);
    assert.equal(batchBalance(12, 16), 0.75);
    // already balanced: left as one batched matmul
    assert.equal(
      tiledMatmul(input('c', [4, 768, 512]), input('d', [4, 512, 40]), 2).inputs[0]!.shape.length,
      3,
    );
    const g = await compile({ split, plain: a.matmul(b) }, { cache: false });
    const out = await g.run({
      a: hostArray('float32', a.shape, rng.fillNormal(new Float32Array(3 * 768 * 512))),
      b: hostArray('float32', b.shape, rng.fillNormal(new Float32Array(3 * 512 * 40))),
    });
    assert.deepEqual(out.split!.shape, [1, 3, 768, 40]);
    const [x, y] = [out.split!.data as Float32Array, out.plain!.data as Float32Array];
    assert.equal(
      x.findIndex((v, i) => v !== y[i]),
      -1,
      'bit for bit',
    );
  });
});

describe('converters', () => {
  it('the DAC produces exactly the 2^(b−1)−1 levels per side of the dynamic range', async () => {
    const xbar = xbarOf({ dac: { kind: 'uniform', bits: 4 } });
    const x = input('x', [1, 1, 200]);
    const d = dac(x, xbar);
    const g = await compile({ q: d.planes.mul(d.planeScale), r: d.range }, { cache: false });
    const v = randn([1, 1, 200], 1);
    const out = await g.run({ x: v });
    const r = (out['r']!.data as Float32Array)[0]!;
    const xs = v.data as Float32Array;
    assert.equal(r, Math.max(...Array.from(xs, Math.abs)));
    toNumbers(out['q']!).forEach((q, i) => {
      assert.ok(Math.abs(q * 7 - Math.round(q * 7)) < 1e-5, `${q} is not a multiple of 1/7`);
      assert.ok(Math.abs(q - xs[i]! / r) <= 0.5 / 7 + 1e-6);
    });
  });

  it('a fixed DAC range clips inputs beyond it; calibrated ranges ask for calibration', async () => {
    const xbar = xbarOf({ dac: { kind: 'uniform', bits: 3, range: { kind: 'fixed', max: 2 } } });
    const x = input('x', [1, 1, 4]);
    const d = dac(x, xbar);
    const g = await compile({ q: d.planes.mul(d.planeScale), r: d.range }, { cache: false });
    const out = await g.run({ x: hostArray('float32', [1, 1, 4], Float32Array.of(-5, -1, 0.4, 3)) });
    // 3 levels per side of ±2: −5 clips, −1 → −1.5 rounds half to even → −2/3, 0.4 → 0.6 → 1/3, 3 clips
    const want = [-1, -2 / 3, 1 / 3, 1];
    for (const [i, q] of toNumbers(out['q']!).entries())
      assert.ok(Math.abs(q - want[i]!) < 1e-6, `${q} vs ${want[i]}`);
    assert.deepEqual(toNumbers(out['r']!), [2]);
    const cal = xbarOf({
      dac: { kind: 'uniform', bits: 8, range: { kind: 'calibrated', percentile: 99.9 } },
    });
    assert.throws(() => dac(x, cal), /dac\.range: range kind 'calibrated' needs calibration/);
  });

  it('the ADC saturates at its range and rounds to its step', async () => {
    const xbar = xbarOf({ adc: { kind: 'uniform', bits: 3, range: { kind: 'fixed', max: 3 } } });
    const x = input('x', [1, 1, 1, 1]);
    const w = input('w', [1, 1, 1, 5]);
    const d = {
      planes: x.reshape([1, 1, 1, 1]),
      codes: x.reshape([1, 1, 1]),
      planeScale: 1,
      planeWeights: [1],
      range: x,
    };
    const operand = { weights: w, squares: null };
    const y = products(d, { x, xbar, operand, sliceWeights: [1], rows: 1, seed: 0, batch: 1 }).codes(false);
    const g = await compile({ y }, { cache: false });
    const out = await g.run({
      x: hostArray('float32', [1, 1, 1, 1], Float32Array.of(1)),
      w: hostArray('float32', [1, 1, 1, 5], Float32Array.of(-9, -1.2, 0.2, 2.6, 7)),
    });
    assert.deepEqual(toNumbers(out['y']!), [-3, -1, 0, 3, 3]); // step 1 (3 levels over ±3)
  });

  it('bit-serial inputs × bit-sliced weights with an ideal ADC equal the quantised matmul', async () => {
    const spec = loadSpec('ideal', [
      'cells={kind: quantized, bitsPerCell: 2, weightBits: 6}',
      'dac={kind: uniform, bits: 5, mode: bitSerial}',
      'tile.rows=8',
      'tile.split=fixed',
    ]);
    const xbar = spec.crossbar('layer.0.query');
    const w = randn([20, 6], 2);
    const p = programWeights(w, xbar, 0, new Rng(0));
    const x = randn([3, 20], 3);
    // the quantised reference in float64
    const levelsW = 63;
    const levelsX = 15;
    const want = new Float64Array(3 * 6);
    for (const [t, tile] of p.rowTiles.entries()) {
      for (let n = 0; n < 3; n++) {
        const r = Math.max(
          ...Array.from({ length: tile.size }, (_, i) =>
            Math.abs((x.data as Float32Array)[n * 20 + tile.start + i]!),
          ),
        );
        for (let c = 0; c < 6; c++) {
          const s = p.scale[t * 6 + c]!;
          for (let i = 0; i < tile.size; i++) {
            const xv = (x.data as Float32Array)[n * 20 + tile.start + i]! / r;
            const xq = (Math.sign(xv) * Math.round(Math.abs(xv) * levelsX)) / levelsX;
            const wv = (w.data as Float32Array)[(tile.start + i) * 6 + c]! / s;
            const wq = (Math.sign(wv) * Math.round(Math.abs(wv) * levelsW)) / levelsW;
            want[n * 6 + c]! += xq * wq * s * r;
          }
        }
      }
    }
    const am = new AnalogModel(spec);
    const y = am.matmuls().linear('layer.0.query', input('x', [3, 20]), param('w', w));
    const g = await compile({ y }, { cache: false });
    const got = await g.run({ x });
    assert.ok(maxRelErr(got['y']!.data as Float32Array, want) < 1e-5);
  });
});

describe('noise statistics', () => {
  const pairStats = (fields: Record<string, unknown>, wn: number, n = 20000, timeS = 0) => {
    const xbar = xbarOf({ ...fields, tile: { rows: n, cols: 1 } }); // one tile, one scale
    const w = hostArray('float32', [n, 1], new Float32Array(n).fill(wn));
    w.data[0] = 1; // sets the tile's scale to 1
    const p = programWeights(w, xbar, timeS, new Rng(9));
    return { eff: p.weights.subarray(1, n), p };
  };

  it('relative programming noise: (G+ − G−)/ΔG has mean w and std σ·G/ΔG per device', () => {
    const { eff } = pairStats(
      { mapping: { gMinUS: 1, gMaxUS: 11 }, program: { kind: 'relative', sigma: 0.1 } },
      0.5,
    );
    // G+ = 1 + 0.5·10 = 6 µS, G− = 1 µS: std = 0.1·sqrt(6² + 1²)/10
    assertNormal(eff, 0.5, (0.1 * Math.sqrt(36 + 1)) / 10, 'relative');
  });

  it('ClipFormer write noise: std γσ_W·sqrt((G − G_MIN)(G_MAX − G_MIN))/ΔG', () => {
    // γ = 1 keeps G+ > 5σ from 0, where conductances are clamped (they cannot go negative)
    const { eff } = pairStats(
      { mapping: { gMinUS: 0.1, gMaxUS: 10 }, program: { kind: 'writeSqrt', gamma: 1, sigma: 0.1 } },
      0.25,
    );
    const dG = 9.9;
    const g = 0.1 + 0.25 * dG;
    assertNormal(eff, 0.25, (0.1 * Math.sqrt((g - 0.1) * dG)) / dG, 'writeSqrt'); // G− at G_MIN gets none
  });

  // a value of 141 of 255 levels: base-4 digits 1, 3, 0, 2 (from the lowest slice up)
  const level = 141;
  const digitsOf141 = [1, 3, 0, 2];
  const sliceWeight = (j: number) => (3 * 4 ** j) / 255;
  const clipformerCells = (per: string) => ({
    mapping: { gMinUS: 0.1, gMaxUS: 10 },
    cells: { kind: 'quantized', bitsPerCell: 2, weightBits: 8 },
    program: { kind: 'writeSqrt', gamma: 1, sigma: 0.1, per },
  });
  // per value: the law on G = G_MIN + (141/255)·ΔG, then re-quantised to 8 bits (uniform error);
  // per cell: the law on each slice's cell, G = G_MIN + (d/3)·ΔG, weighted by its slice
  const perValueStd = Math.sqrt(0.01 * (level / 255) + 1 / (12 * 255 * 255));
  const perCellStd = Math.sqrt(digitsOf141.reduce((a, d, j) => a + 0.01 * (d / 3) * sliceWeight(j) ** 2, 0));

  it('ClipFormer write noise on K/V per value follows the law on the value’s conductance, per cell on each cell’s', async () => {
    // x = I: the product reads back the written operand, one value per (sample, row, column)
    const [b, d] = [48, 64];
    const x = hostArray(
      'float32',
      [b, 1, d, d],
      new Float32Array(b * d * d).map((_, i) => (i % d === Math.floor(i / d) % d ? 1 : 0)),
    );
    const wv = new Float32Array(b * d * d).fill(level / 255);
    for (let s = 0; s < b; s++) wv[s * d * d] = 1; // each sample's tile scale is 1
    const w = hostArray('float32', [b, 1, d, d], wv);
    const written = async (per: string) => {
      const xbar = xbarOf({ ...clipformerCells(per), tile: { rows: d, cols: d, split: 'fixed' } });
      const y = dynamicProduct(input('x', x.shape), input('w', w.shape), xbar, 17);
      const out = (await (await compile({ y }, { cache: false })).run({ x, w }))['y']!.data as Float32Array;
      return out.filter((_, i) => i % (d * d) !== 0);
    };
    assertNormal(await written('value'), level / 255, perValueStd, 'per value');
    assertNormal(await written('cell'), level / 255, perCellStd, 'per cell');
    assert.ok(perValueStd > 1.2 * perCellStd); // the two options differ by far more than the tolerance
  });

  it('ClipFormer write noise on static weights per value follows the law on the value’s conductance', () => {
    const { eff, p } = pairStats(clipformerCells('value'), level / 255);
    // the slices recombined: Σ_j sliceWeight_j · eff_j
    const n = eff.length;
    const values = Float64Array.from({ length: n }, (_, i) =>
      digitsOf141.reduce((a, _d, j) => a + sliceWeight(j) * p.weights[j * (n + 1) + i + 1]!, 0),
    );
    assertNormal(values, level / 255, perValueStd, 'static, per value');
  });

  it('PCM programming noise follows the polynomial (scaled to G_MAX)', () => {
    const { eff } = pairStats({ mapping: { gMinUS: 0, gMaxUS: 25 }, program: { kind: 'pcm' } }, 0.5);
    const sp = 0.26348 + 1.965 * 0.5 - 1.1731 * 0.25; // σ of G+ (target 12.5 µS), µS
    const s0 = 0.26348; // σ of G− (target 0), clipped at 0: a half-normal max(0, s0·ξ)
    const mean = 0.5 - s0 / Math.sqrt(2 * Math.PI) / 25;
    const std = Math.sqrt(sp ** 2 + s0 ** 2 * (0.5 - 1 / (2 * Math.PI))) / 25;
    assertNormal(eff, mean, std, 'pcm');
  });

  it('additive programming noise: std σ·G_MAX per device', () => {
    const { eff } = pairStats(
      { mapping: { gMinUS: 0, gMaxUS: 20 }, program: { kind: 'additive', sigma: 0.02 } },
      0.6,
    );
    // G+ = 12 µS and G− = 0: only G− can reach the clamp at 0 (half-normal), as for PCM
    const s0 = 0.02 * 20;
    assertNormal(
      eff,
      0.6 - s0 / Math.sqrt(2 * Math.PI) / 20,
      Math.sqrt(s0 ** 2 + s0 ** 2 * (0.5 - 1 / (2 * Math.PI))) / 20,
      'additive',
    );
  });

  it('PCM drift follows (t/t0)^−ν and global compensation restores the scale', () => {
    const base = { mapping: { gMinUS: 0, gMaxUS: 25 }, drift: { kind: 'pcm', readNoise: false } };
    const hour = pairStats(base, 0.5, 20000, 3600).eff;
    // median ν at ĝ = 0.5: μ_ν = −0.0155·ln 0.5 + 0.0244 clamped to [0.049, 0.1]
    const nu = Math.min(Math.max(-0.0155 * Math.log(0.5) + 0.0244, 0.049), 0.1);
    const sorted = Float32Array.from(hour).sort();
    const median = sorted[sorted.length >> 1]!;
    assert.ok(Math.abs(median / 0.5 - (3620 / 20) ** -nu) < 0.01, `median ${median}`);
    const comp = pairStats({ ...base, driftCompensation: 'global' }, 0.5, 20000, 3600);
    const meanAfter = moments(comp.eff).mean * comp.p.scale[0]!;
    assert.ok(Math.abs(meanAfter - 0.5) < 0.005, `compensated mean ${meanAfter}`);
  });

  it('read noise: the output-referred variance is σ_R²·Σ x²(G+² + G−²)/ΔG²', async () => {
    const xbar = xbarOf({ mapping: { gMinUS: 0, gMaxUS: 1 }, readNoise: { kind: 'relative', sigma: 0.2 } });
    const n = 4000;
    const x = input('x', [1, n, 4]);
    const w = input('w', [1, 1, 4, 1]);
    const sq = input('sq', [1, 1, 4, 1]);
    const d = { planes: x.reshape([1, 1, n, 4]), codes: x, planeScale: 1, planeWeights: [1], range: x };
    const operand = { weights: w, squares: sq };
    const y = products(d, { x, xbar, operand, sliceWeights: [1], rows: 4, seed: 3, batch: 1 }).codes(false);
    const g = await compile({ y }, { cache: false });
    const xs = Float32Array.from({ length: 4 * n }, (_, i) => [1, -0.5, 0.25, 0][i % 4]!);
    const ws = Float32Array.of(0.5, -1, 0.25, 1);
    const out = await g.run({
      x: hostArray('float32', [1, n, 4], xs),
      w: hostArray('float32', [1, 1, 4, 1], ws),
      sq: hostArray(
        'float32',
        [1, 1, 4, 1],
        ws.map((v) => v * v),
      ),
    });
    // mean Σ x·w; variance σ²·Σ x²w² (one device of each pair is at G_MIN = 0)
    const mean = 1 * 0.5 + -0.5 * -1 + 0.25 * 0.25;
    const std = 0.2 * Math.sqrt(1 * 0.25 + 0.25 * 1 + 0.0625 * 0.0625);
    assertNormal(out['y']!.data as Float32Array, mean, std, 'read');
  });

  it('K/V write noise is fresh for every input (sample); the same seed and sample repeat it', async () => {
    const xbar = xbarOf({
      mapping: { gMinUS: 0.1, gMaxUS: 10 },
      tile: { rows: 4, cols: 4, split: 'fixed' },
      program: { kind: 'writeSqrt', gamma: 3, sigma: 0.1 },
    });
    const q = input('q', [2, 1, 3, 4]);
    const k = input('k', [2, 1, 4, 3]);
    const y = dynamicProduct(q, k, xbar, 7);
    const qv = randn([1, 1, 3, 4], 1);
    const kv = randn([1, 1, 4, 3], 2);
    const twice = (a: HostArray) =>
      hostArray(
        'float32',
        [2, ...a.shape.slice(1)],
        Float32Array.from([...(a.data as Float32Array), ...(a.data as Float32Array)]),
      );
    const feeds = { q: twice(qv), k: twice(kv) };
    const stream = async () => {
      const g = await compile({ y }, { cache: false });
      // samples 0, 1, then samples 2, 3
      return [toNumbers((await g.run(feeds))['y']!), toNumbers((await g.run(feeds, 2))['y']!)];
    };
    const [a1, a2] = await stream();
    assert.notDeepEqual(a1!.slice(0, 9), a1!.slice(9, 18)); // the same K written for two inputs
    assert.notDeepEqual(a1, a2); // two other samples
    assert.deepEqual(await stream(), [a1, a2]); // same seed and samples, same noise
  });

  it('cellCodes: noise-free bit slices are integer codes as programWeights writes them, noisy ones not', () => {
    const xbar = loadSpec('rram-clipformer').crossbar('layer.0.query');
    const codes = cellCodes(xbar)!;
    const p = programWeights(randn([100, 24], 4), xbar, 0, new Rng(2));
    const [c0, c1, c2] = codes.squares;
    const seen = new Set<number>();
    p.weights.forEach((w, i) => {
      const k = Math.round(w / codes.unit);
      seen.add(k);
      // float32 rounding of (G+ − G−)/ΔG and (G+² + G−²)/ΔG² apart
      assert.ok(Math.abs(w - k * codes.unit) <= 1e-6, `weight ${i}: ${w} is not a multiple of ${codes.unit}`);
      // rows past the last tile's are zero, squares included (their inputs are zero)
      const sq = w === 0 && p.squares[i] === 0 ? 0 : c0 + c1 * Math.abs(k) + c2 * k * k;
      assert.ok(Math.abs(p.squares[i]! - sq) <= 1e-6 * sq, `square ${i}: ${p.squares[i]} against ${sq}`);
    });
    assert.deepEqual(
      [...seen].sort((a, b) => a - b),
      [-3, -2, -1, 0, 1, 2, 3],
    );
    for (const preset of ['fefet-trex', 'pcm-aihwkit'])
      assert.equal(cellCodes(loadSpec(preset).crossbar('layer.0.query')), null, preset);
    assert.equal(cellCodes(xbarOf({ ...xbar, drift: { kind: 'pcm' } })), null, 'drift');
  });

  it('refuses specs it cannot map, naming the field (input errors, not internal ones)', () => {
    const q = input('q', [1, 1, 3, 7]);
    const k = input('k', [1, 1, 7, 3]);
    const kv = (fields: Record<string, unknown>) => () => dynamicProduct(q, k, xbarOf(fields), 7);
    const error = (message: RegExp) => ({ name: 'InputError', message });
    assert.throws(kv({ mapping: { scale: 'none' } }), error(/attention\.device: mapping\.scale 'none'/));
    assert.throws(
      kv({ tile: { rows: 4, split: 'even' } }),
      error(/tile\.split 'even': 7 rows do not split evenly/),
    );
    const offset = xbarOf({ mapping: { kind: 'offset' } });
    assert.throws(
      () => programWeights(randn([4, 2], 1), offset, 0, new Rng(1), new Float32Array(2).fill(0.5)),
      error(/mapping\.conductanceRange: a per-column range needs mapping\.kind 'differential'/),
    );
  });
});
