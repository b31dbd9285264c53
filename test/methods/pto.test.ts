/** Post-training input-range calibration: the percentile rule on known data, per-tile ranges, and their use in the DAC. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec } from '../../src/analog/presets.js';
import { columnSpan, programWeights } from '../../src/analog/program.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { input, param } from '../../src/graph/tensor.js';
import {
  calibrateConductanceRanges,
  calibrateInputRanges,
  columnEta,
  percentile,
  tilePercentiles,
} from '../../src/methods/pto.js';
import { compile } from '../../src/runtime/session.js';
import { Rng } from '../../src/util/math.js';
import { FIXTURES, vitMnist } from '../helpers/models.js';

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
        const d = openData(parseDataSpec(`mnist:${FIXTURES}/mnist`), model, { split: 'train' });
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

describe('conductance-range optimisation', () => {
  it('η = I_S / (μ + L·σ) above the saturation current, 1 below it', () => {
    assert.equal(columnEta(6, 2, 3, 10), 10 / 12);
    assert.equal(columnEta(6, 1, 3, 10), 1);
    assert.equal(columnEta(0, 0, 3, 10), 1);
  });

  it('programming with η shrinks the column’s devices and restores the product digitally', () => {
    const w = hostArray('float32', [2, 2], Float32Array.from([1, -0.5, 0.25, 1]));
    const xbar = loadSpec('ideal', ['mapping.scale=column']).crossbar('probe');
    const full = programWeights(w, xbar, 0, new Rng(0));
    const shrunk = programWeights(w, xbar, 0, new Rng(0), Float32Array.from([0.5, 1]));
    for (let i = 0; i < 4; i++) {
      const col = i % 2;
      const rho = col === 0 ? 0.5 : 1;
      assert.ok(Math.abs(shrunk.weights[i]! - rho * full.weights[i]!) < 1e-6, `device ${i}`);
      // weight × scale is the same product
      assert.ok(
        Math.abs(shrunk.weights[i]! * shrunk.scale[col]! - full.weights[i]! * full.scale[col]!) < 1e-6,
      );
    }
    // never below 1 % of the span
    assert.equal(columnSpan(1e-6, 0, 25), 0.01);
    assert.equal(columnSpan(0.5, 5, 25), (12.5 - 5) / 20);
  });

  it('shrinks columns in proportion to the saturation current, and not at all when it cannot saturate', async () => {
    const { model } = vitMnist(5);
    const calib = () => openData(parseDataSpec(`mnist:${FIXTURES}/mnist`), model, { split: 'train' });
    const at = (max: number, kind = 'fixed') =>
      loadSpec('pcm-lammie', [
        'mapping.conductanceRange.kind=calibrated',
        'mapping.conductanceRange.sigmas=0',
        'mapping.conductanceRange.samples=4',
        `adc.range.kind=${kind}`,
        ...(kind === 'fixed' ? [`adc.range.max=${max}`] : []),
      ]);
    const lines: string[] = [];
    const a = await calibrateConductanceRanges(model, calib, at(0.02), new Map(), (l) => lines.push(l));
    const b = await calibrateConductanceRanges(model, calib, at(0.01));
    assert.equal(a.size, 6);
    assert.equal(lines.length, 6);
    // with L = 0, η = min(1, I_S/μ): halving I_S halves η where both shrink
    let compared = 0;
    for (const [name, ea] of a) {
      const eb = b.get(name)!;
      for (let i = 0; i < ea.length; i++) {
        assert.ok(ea[i]! > 0 && ea[i]! <= 1);
        if (ea[i]! < 1) {
          assert.ok(Math.abs(eb[i]! - ea[i]! / 2) < 1e-5 * ea[i]!, `${name}[${i}]: ${ea[i]} → ${eb[i]}`);
          compared++;
        }
      }
    }
    assert.ok(compared > 10, `${compared} shrunk columns`);
    // a 'full' ADC range (±rows) never saturates: nothing shrinks
    const none = await calibrateConductanceRanges(model, calib, at(0, 'full'));
    for (const eta of none.values()) assert.ok(eta.every((v) => v === 1));
    // after learned scales η₀ = 0.5 (PTO on top of learned ranges): the currents halve, so with
    // L = 0 the rule asks for min(1, 2·I_S/μ) of what is left, and the result is η₀ times that
    const half = new Map([...a].map(([name, e]) => [name, new Float32Array(e.length).fill(0.5)]));
    const after = await calibrateConductanceRanges(model, calib, at(0.02), new Map(), () => {}, half);
    let checked = 0;
    for (const [name, ea] of a) {
      const e = after.get(name)!;
      for (let i = 0; i < ea.length; i++) {
        const want = 0.5 * Math.min(1, 2 * ea[i]!);
        assert.ok(Math.abs(e[i]! - want) < 1e-5, `${name}[${i}]: ${e[i]} vs ${want}`);
        if (ea[i]! < 0.5) checked++;
      }
    }
    assert.ok(checked > 5, `${checked} columns still saturating at η₀ = 0.5`);
  });

  it('takes μ + L·σ over the signed column current, as the paper does; over |I| only when asked', async () => {
    const { model } = vitMnist(5);
    const calib = () => openData(parseDataSpec(`mnist:${FIXTURES}/mnist`), model, { split: 'train' });
    const at = (current?: string) =>
      loadSpec('pcm-lammie', [
        'mapping.conductanceRange.kind=calibrated',
        'mapping.conductanceRange.sigmas=0',
        'mapping.conductanceRange.samples=4',
        'adc.range.max=0.02',
        ...(current ? [`mapping.conductanceRange.current=${current}`] : []),
      ]);
    assert.equal(at().crossbar('layer.0.query').mapping.conductanceRange.kind, 'calibrated');
    const r = at().crossbar('layer.0.query').mapping.conductanceRange;
    assert.equal(r.kind === 'calibrated' && r.current, 'signed');
    const signed = await calibrateConductanceRanges(model, calib, at());
    const magnitude = await calibrateConductanceRanges(model, calib, at('magnitude'));
    // with L = 0, η = min(1, I_S/μ): mean |I| ≥ mean I, so |I| shrinks every column at least as
    // much; columns whose currents cancel in sign shrink under |I| only
    let looser = 0;
    for (const [name, es] of signed) {
      const em = magnitude.get(name)!;
      for (let i = 0; i < es.length; i++) {
        assert.ok(es[i]! >= em[i]! - 1e-6, `${name}[${i}]: signed ${es[i]} < magnitude ${em[i]}`);
        if (es[i]! > em[i]! * 1.01) looser++;
      }
    }
    assert.ok(looser > 10, `${looser} columns shrink less over I than over |I|`);
  });

  it('counts the shrunk columns and the calibration currents beyond ±I_S', async () => {
    const { model } = vitMnist(5);
    const calib = () => openData(parseDataSpec(`mnist:${FIXTURES}/mnist`), model, { split: 'train' });
    const counted = async (sets: string[]) => {
      const counts: { shrunk: number; columns: number; beyond: number }[] = [];
      const eta = await calibrateConductanceRanges(
        model,
        calib,
        loadSpec('pcm-lammie', ['mapping.conductanceRange.kind=calibrated', ...sets]),
        new Map(),
        (_, c) => counts.push(c),
      );
      return { eta, counts };
    };
    const tight = await counted(['adc.range.max=0.01']);
    const loose = await counted(['adc.range.max=0.05']);
    const full = await counted(['adc.range.kind=full']);
    assert.equal(tight.counts.length, 6);
    for (const [i, [, eta]] of [...tight.eta].entries()) {
      assert.equal(tight.counts[i]!.shrunk, eta.filter((v) => v < 1).length);
      assert.equal(tight.counts[i]!.columns, eta.length);
    }
    const beyond = (r: typeof tight) => r.counts.reduce((a, c) => a + c.beyond, 0);
    // a 512-row ADC range never saturates; a lower I_S leaves more currents beyond it
    assert.equal(beyond(full), 0);
    assert.ok(beyond(tight) > beyond(loose) && beyond(loose) > 0, `${beyond(tight)} vs ${beyond(loose)}`);
    for (const c of tight.counts) assert.ok(c.beyond >= 0 && c.beyond <= 1);
  });

  it('an analog model with a calibrated conductance range asks for its scales', () => {
    const { model } = vitMnist(5);
    const analog = new AnalogModel(loadSpec('pcm-lammie', ['mapping.conductanceRange.kind=calibrated']), 0);
    assert.throws(
      () => model.graph({ batch: 1 }, analog.matmuls()),
      /mapping\.conductanceRange: range kind 'calibrated' needs calibration/,
    );
  });
});
