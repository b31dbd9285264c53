/** Post-training input-range calibration: the percentile rule on known data, per-tile ranges, and their use in the DAC. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { input, param } from '../../src/graph/tensor.js';
import { calibrateInputRanges, percentile, tilePercentiles } from '../../src/methods/pto.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';
import { SHARED_DATA, vitMnist } from '../helpers/models.js';

describe('percentile', () => {
  it('interpolates between order statistics like NumPy', () => {
    assert.equal(percentile(Float32Array.from([4, 1, 3, 2]), 50), 2.5);
    assert.equal(percentile(Float32Array.from([4, 1, 3, 2]), 100), 4);
    assert.equal(percentile(Float32Array.from([4, 1, 3, 2]), 0), 1);
  });

  it('finds the 99th percentile of |N(0, 1)| within its sampling error', () => {
    const n = 200_000;
    const v = new Rng(3).fillNormal(new Float32Array(n), 0, 1).map(Math.abs);
    // |Z| has P(|Z| ≤ 2.5758) = 0.99; the quantile's sd is sqrt(p(1−p)/n)/f(q), f = 2φ(q)
    const q = 2.5758293;
    const f = (2 * Math.exp(-(q * q) / 2)) / Math.sqrt(2 * Math.PI);
    const se = Math.sqrt((0.99 * 0.01) / n) / f;
    assert.ok(Math.abs(percentile(v, 99) - q) < 5 * se, `${percentile(v, 99)}`);
  });

  it('gives each input tile the percentile of the columns it holds', () => {
    // rows of [1, 2, 3, 100·k]: tile 0 holds columns 0..1, tile 1 columns 2..3
    const m = 101;
    const x = new Float32Array(m * 4);
    for (let k = 0; k < m; k++) x.set([1, -2, 3, -k], k * 4);
    const r = tilePercentiles(
      x,
      4,
      [
        { start: 0, size: 2 },
        { start: 2, size: 2 },
      ],
      100,
    );
    assert.deepEqual(Array.from(r), [2, 100]);
  });
});

describe('calibrateInputRanges', () => {
  it('calibrates every mapped layer on the training split, and the DAC clips at the calibrated ranges', async () => {
    const { model } = vitMnist(5);
    const spec = loadSpec('pcm-lammie', [
      'dac.range.kind=calibrated',
      'dac.range.percentile=90',
      'dac.range.samples=4',
      'tile.rows=8',
    ]);
    let split = '';
    const ranges = await calibrateInputRanges(
      model,
      () => {
        const d = openData(parseDataSpec(`mnist:${SHARED_DATA}/mnist`), model, { split: 'train' });
        split = d.name;
        return d;
      },
      spec,
    );
    assert.match(split, /train/);
    // 1 layer: query, key, value, output, ffnIn, ffnOut
    assert.equal(ranges.size, 6, [...ranges.keys()].join(', '));
    const q = ranges.get('layer.0.query')!;
    assert.equal(q.length, 2); // 16 inputs in tiles of 8
    assert.ok(q.every((v) => v > 0 && Number.isFinite(v)));

    // a single analog layer with ranges set: inputs beyond a tile's range clip there
    const analog = new AnalogModel(
      loadSpec('ideal', [
        'dac.kind=uniform',
        'dac.bits=16',
        'dac.range.kind=calibrated',
        'dac.range.percentile=50',
        'tile.rows=2',
      ]),
      0,
    );
    analog.setInputRanges(new Map([['probe', Float32Array.from([1, 0.5])]]));
    const w = param('w', hostArray('float32', [4, 1], Float32Array.from([1, 1, 1, 1])));
    const x = input('x', [1, 4]);
    const g = await compile({ y: analog.linear('probe', x, w) });
    const y = await g.run({ x: hostArray('float32', [1, 4], Float32Array.from([3, 0.25, 2, -0.25])) });
    // tile 0 (range 1): 3 → 1, 0.25; tile 1 (range 0.5): 2 → 0.5, −0.25 → sum 1.5
    assert.ok(Math.abs((y['y']!.data as Float32Array)[0]! - 1.5) < 1e-3, String(y['y']!.data));
    // a re-calibration changes the values the compiled graph reads, without reprogramming
    analog.setInputRanges(new Map([['probe', Float32Array.from([4, 4])]]));
    const y2 = await g.run({ x: hostArray('float32', [1, 4], Float32Array.from([3, 0.25, 2, -0.25])) });
    assert.ok(Math.abs((y2['y']!.data as Float32Array)[0]! - 5) < 1e-3, String(y2['y']!.data));
  });
});
