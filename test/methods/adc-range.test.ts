import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { dynamicProduct } from '../../src/analog/dynamic.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { recordLayerInputs } from '../../src/eval/predict.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import { input, param } from '../../src/graph/tensor.js';
import { calibrateAdcRanges, columnPercentiles } from '../../src/methods/adc-range.js';
import { nativeKernels, useNativeKernels } from '../../src/runtime/native.js';
import { compile, feedsFor } from '../../src/runtime/session.js';
import { InputError } from '../../src/util/errors.js';
import { FIXTURES, vitMnist } from '../helpers/models.js';

const wasOn = useNativeKernels(true);
after(() => useNativeKernels(wasOn));

/**
 * A 2×2 crossbar as the test below works it out by hand: weights as they are (mapping.scale
 * 'none'), analog cells, a 3-bit bit-serial DAC (levels 3), a 3-bit ADC (levels 3).
 */
const tiny = (range: string) =>
  loadSpec('ideal', [
    'tile.rows=2',
    'tile.cols=2',
    'mapping.scale=none',
    'dac={kind: uniform, bits: 3, mode: bitSerial}',
    `adc={kind: uniform, bits: 3, range: ${range}}`,
  ]);

async function tinyOutputs(range: string, adcRanges?: number[]): Promise<number[]> {
  const analog = new AnalogModel(tiny(range), 0);
  if (adcRanges) analog.setAdcRanges(new Map([['probe', Float32Array.from(adcRanges)]]));
  const w = param('w', hostArray('float32', [2, 2], Float32Array.from([0.5, 0.1, 0.25, 0.05])));
  const g = await compile({ y: analog.linear('probe', input('x', [1, 2]), w) }, { cache: false });
  const y = await g.run({ x: hostArray('float32', [1, 2], Float32Array.from([1, 1 / 3])) });
  return Array.from(y['y']!.data as Float32Array);
}

describe('a calibrated ADC range per column', () => {
  it('takes the percentile of |value before the ADC| per row tile and column, planes and slices pooled', () => {
    // J = 2 slices, R = 1, N = 2 vectors, C = 2 columns; one plane
    const plane = Float32Array.from([1, -4, 2, 0, -3, 8, 0.5, 2]);
    // column 0: {1, 2, 3, 0.5}; column 1: {4, 0, 8, 2}; × the step 0.5
    assert.deepEqual(Array.from(columnPercentiles([plane], [2, 1, 2, 2], 100, 0.5)), [1.5, 4]);
    // the medians: 1.5 and 3
    assert.deepEqual(Array.from(columnPercentiles([plane], [2, 1, 2, 2], 50, 0.5)), [0.75, 1.5]);
    // a second plane joins the same columns' pools
    const second = Float32Array.from([10, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(Array.from(columnPercentiles([plane, second], [2, 1, 2, 2], 100, 1)), [10, 8]);
    // a column that never conducts still gets a positive range
    assert.ok(columnPercentiles([new Float32Array(8)], [2, 1, 2, 2], 100, 1)[0]! > 0);
  });

  for (const kernel of ['the native kernel', 'the ONNX graph'])
    it(`converts each column in its own range (hand-computed codes; ${kernel})`, {
      skip: kernel === 'the native kernel' && !nativeKernels() ? 'no native kernel here' : false,
    }, async () => {
      useNativeKernels(kernel === 'the native kernel');
      // x = [1, 1/3]: DAC codes [3, 1] of levels 3; bit planes (weights 1/3, 2/3): [1, 1] and
      // [1, 0]. Column values per plane: column 0 0.75 and 0.5, column 1 0.15 and 0.1.
      // Full scale (±2 rows, step 2/3): codes 1, 1 and 0, 0 → (1/3 + 2/3)·2/3 = 2/3, and 0: the
      // small column is lost.
      const full = await tinyOutputs('{kind: full}');
      assert.ok(Math.abs(full[0]! - 2 / 3) < 1e-6 && full[1] === 0, `${full}`);
      // column 0 at ±0.8 (step 0.8/3): 0.75 → 2.8125 → 3, 0.5 → 1.875 → 2: (3/3 + 2·2/3)·0.8/3;
      // column 1 at ±0.1 (step 1/30): 0.15 → 4.5 saturates at 3, 0.1 → 3: (3/3 + 3·2/3)/30
      const calibrated = await tinyOutputs('{kind: calibrated}', [0.8, 0.1]);
      assert.ok(Math.abs(calibrated[0]! - (7 / 3) * (0.8 / 3)) < 1e-6, `${calibrated}`);
      assert.ok(Math.abs(calibrated[1]! - 0.1) < 1e-6, `${calibrated}`);
    });

  it('is refused without calibration data, naming the layer and the field', () => {
    const analog = new AnalogModel(tiny('{kind: calibrated}'), 0);
    const w = param('w', hostArray('float32', [2, 2], new Float32Array(4)));
    assert.throws(
      () => analog.linear('probe', input('x', [1, 2]), w),
      (e: unknown) =>
        e instanceof InputError &&
        /probe: adc\.range: range kind 'calibrated' needs calibration/.test(e.message),
    );
  });

  it('is refused without calibration data on crossbars written per input (K, V)', () => {
    const spec = loadSpec('rram-clipformer', ['adc.range.kind=calibrated']);
    const q = input('q', [1, 1, 2, 4]);
    const k = input('k', [1, 1, 4, 2]);
    assert.throws(
      () => dynamicProduct(q, k, spec.attention!, 0),
      /attention\.device\.adc\.range: range kind 'calibrated' needs calibration/,
    );
    assert.throws(
      () => new AnalogModel(spec, 0).matmuls().scores('layer.0.scores', q, k),
      /layer\.0\.scores: attention\.device\.adc\.range: range kind 'calibrated' needs calibration/,
    );
  });

  it('calibrates each static layer from its noise-free column outputs on the training split', async () => {
    useNativeKernels(true);
    const { model } = vitMnist(5);
    // an ideal DAC (inputs normalised by max|x| per vector and tile), analog cells as they are:
    // the 100th percentile is the largest |x_n·W| of each (tile, column)
    const spec = loadSpec('ideal', [
      'tile.rows=8',
      'mapping.scale=none',
      'adc={kind: uniform, bits: 6, range: {kind: calibrated, percentile: 100, samples: 3}}',
    ]);
    let split = '';
    const open = () => {
      const d = openData(parseDataSpec(`mnist:${FIXTURES}/mnist`), model, { split: 'train' });
      split = d.name;
      return d;
    };
    const ranges = await calibrateAdcRanges(model, open, spec);
    assert.match(split, /train/);
    assert.equal(ranges.size, 6, [...ranges.keys()].join(', '));
    const calib = open();
    const xs = await recordLayerInputs(model, calib.inputs(0, 3), ['layer.0.ffnIn']);
    const x = xs.get('layer.0.ffnIn')! as HostArray;
    const w = model.linearLayers().find((l) => l.name === 'layer.0.ffnIn')!.weight;
    const W = (w.attrs as { value: HostArray }).value.data as Float32Array;
    const [inDim, outDim] = w.shape as [number, number];
    const xd = x.data as Float32Array;
    const m = xd.length / inDim;
    const got = ranges.get('layer.0.ffnIn')!;
    assert.equal(got.length, (inDim / 8) * outDim);
    for (let r = 0; r < inDim / 8; r++) {
      for (let c = 0; c < outDim; c++) {
        let peak = 0;
        for (let n = 0; n < m; n++) {
          let top = 0;
          for (let i = 0; i < 8; i++) top = Math.max(top, Math.abs(xd[n * inDim + r * 8 + i]!));
          let v = 0;
          for (let i = 0; i < 8; i++) v += (xd[n * inDim + r * 8 + i]! / top) * W[(r * 8 + i) * outDim + c]!;
          peak = Math.max(peak, Math.abs(v));
        }
        const g = got[r * outDim + c]!;
        assert.ok(Math.abs(g - peak) <= 1e-5 * peak + 1e-7, `tile ${r}, column ${c}: ${g} vs ${peak}`);
      }
    }
  });

  it('calibrates the K/V crossbars of attention on crossbars: a range per row tile and padded column', async () => {
    useNativeKernels(true);
    const { model } = vitMnist(5);
    const spec = loadSpec('rram-clipformer', ['adc.range.kind=calibrated', 'adc.range.samples=3']);
    const open = () => openData(parseDataSpec(`mnist:${FIXTURES}/mnist`), model, { split: 'train' });
    const ranges = await calibrateAdcRanges(model, open, spec);
    // 6 static layers, QKᵀ and S·V: head dim 8 rows × 17 tokens and 17 rows × 8 dims, one 64-column tile each
    assert.deepEqual([...ranges.keys()].filter((n) => /scores|mix/.test(n)).sort(), [
      'layer.0.mix',
      'layer.0.scores',
    ]);
    for (const name of ['layer.0.scores', 'layer.0.mix']) {
      const r = ranges.get(name)!;
      assert.equal(r.length, 64, name);
      // the padding columns never conduct: the smallest range; the real ones do
      assert.ok(
        r.slice(0, 8).every((v) => v > 1e-6) && r.slice(20).every((v) => v === Math.fround(1e-30)),
        name,
      );
    }
    // an instance with them runs and refuses nothing
    const analog = new AnalogModel(spec, 0);
    analog.setAdcRanges(ranges);
    await analog.prepare(model);
    const data = open();
    const { feeds, shape } = model.feeds(data.inputs(0, 2));
    const g = await compile({ logits: model.graph(shape, analog.matmuls()).logits }, { cache: false });
    const logits = (await g.run(feedsFor(g, feeds)))['logits']!.data as Float32Array;
    assert.ok(logits.every(Number.isFinite));
  });
});
