/**
 * The post-training paper's learned ranges in hardware-aware training: input ranges (Eq. 2: the
 * clipping gradient grows them, the decay shrinks them), per-column conductance scales η that
 * trade ADC saturation for noise, unit weights with clipping, and the analog_ranges file that
 * carries them from training to evaluation.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { LEARNED_RANGES_FILE, learnedRangesFor, readLearnedRanges } from '../../src/analog/learned-ranges.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { grad } from '../../src/graph/autodiff.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import { input, param } from '../../src/graph/tensor.js';
import { loadModel } from '../../src/models/index.js';
import { compile } from '../../src/runtime/session.js';
import { train } from '../../src/train/loop.js';
import { NoiseAwareTraining } from '../../src/train/noise-aware.js';
import { FIXTURES, ROOT, vitMnist } from '../helpers/models.js';

const MNIST = `mnist:${join(FIXTURES, 'mnist')}`;
const quiet = { quiet: true, log: () => {} };
const QUIET_PCM = ['program.kind=none', 'drift.kind=none', 'outputNoise.kind=none'];

/** Loss (y − target)² of one layer W [4, 1] = 1 on x = [1, 1, 1, 1], its gradients and extra outputs. */
async function oneColumn(sets: string[], target: number) {
  const t = new NoiseAwareTraining(loadSpec('pcm-lammie', [...QUIET_PCM, ...sets]), 1);
  const { matmuls, outputs } = t.graph();
  const w = param('w', hostArray('float32', [4, 1], new Float32Array(4).fill(1)));
  const y = matmuls.linear('layer.0.query', input('x', [1, 4]), w);
  const loss = y.sub(target).pow(2).sum();
  const learned = t.params();
  const gs = grad(loss, learned);
  const g = await compile(
    { y, ...Object.fromEntries(gs.map((x, k) => [`g${k}`, x])), ...outputs },
    { cache: false },
  );
  const out = await g.run({ x: hostArray('float32', [1, 4], new Float32Array(4).fill(1)) });
  return { t, w, learned, out, grads: gs.map((_, k) => out[`g${k}`]!) };
}
const first = (a: HostArray) => (a.data as Float32Array)[0]!;

describe('learned ranges in hardware-aware training', () => {
  it('xbar train refuses noise-aware flags without --hwa instead of ignoring them', () => {
    for (const [flag, want] of [
      [['--range-lr', '1e-3'], /--range-lr needs --hwa/],
      [['--gamma', '2'], /--gamma needs --hwa/],
      [['--set', 'adc.bits=6'], /--set adc\.bits=6: needs --hwa/],
    ] as const) {
      const r = spawnSync(
        process.execPath,
        [
          join(ROOT, 'bin/xbar.js'),
          'train',
          '--model',
          join(ROOT, 'models/bert-sst2'),
          '--data',
          'glue-sst2:x',
          '--out',
          tmpdir(),
          ...flag,
        ],
        { encoding: 'utf8' },
      );
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, want);
    }
  });

  it('a saturating column shrinks its η; an unsaturated one computes x·W exactly', async () => {
    // x/range = 0.5 at a range of 2, so the column current is 4·0.5·η = 2η against an ADC
    // saturating at 1: at η = 1 it reads 1 (y = 1/η·range = 2, not 4) and d(y − 4)²/dη = 8 > 0
    const sets = [
      'dac.bits=16',
      'dac.range.kind=learned',
      'dac.range.init=2',
      'adc.bits=16',
      'adc.range.max=1',
      'mapping.conductanceRange.kind=learned',
    ];
    const sat = await oneColumn(sets, 4);
    assert.ok(Math.abs(first(sat.out['y']!) - 2) < 1e-3, `saturated output ${first(sat.out['y']!)}`);
    assert.ok(first(sat.grads[1]!) > 7.9 && first(sat.grads[1]!) < 8.1, `dL/dη ${first(sat.grads[1]!)}`);
    // at η = 0.4 the current 0.8 fits the ADC: y = 0.8/η·range = 4, the true x·W
    const eta = (sat.learned[1]!.attrs as { value: HostArray }).value.data as Float32Array;
    eta[0] = 0.4;
    const { matmuls } = sat.t.graph();
    const y = matmuls.linear('layer.0.query', input('x', [1, 4]), sat.w);
    const g = await compile({ y }, { cache: false });
    const out = await g.run({ x: hostArray('float32', [1, 4], new Float32Array(4).fill(1)) });
    assert.ok(Math.abs(first(out['y']!) - 4) < 1e-3, `unsaturated output ${first(out['y']!)}`);
    // η stays in [min, 1]
    eta[0] = 7;
    sat.t.afterStep();
    assert.equal(eta[0], 1);
    eta[0] = -3;
    sat.t.afterStep();
    assert.equal(eta[0], Math.fround(0.01));
  });

  it('clipped inputs grow the input range (Σ min(g, 0)); inputs all inside let the decay shrink it', async () => {
    // range 0.5 clips every x = 1: y = 4·0.5 = 2, dL/dx̂ = 2(y − 4)·w = −4 per input, so the
    // range's gradient is 4·(−4) = −16 (the division by the range and the gain cancel)
    const clipped = await oneColumn(
      ['dac.bits=16', 'dac.range.kind=learned', 'dac.range.init=0.5', 'adc.kind=ideal'],
      4,
    );
    assert.ok(Math.abs(first(clipped.out['y']!) - 2) < 1e-3, `clipped output ${first(clipped.out['y']!)}`);
    assert.ok(Math.abs(first(clipped.grads[0]!) + 16) < 1e-2, `dL/dr ${first(clipped.grads[0]!)}`);
    assert.equal(first(clipped.out['hwa.layer.0.query.inside']!), 0);
    clipped.t.adjustGradients(clipped.grads, clipped.out);
    assert.ok(Math.abs(first(clipped.grads[0]!) + 16) < 1e-2, 'no decay while most inputs clip');
    // range 1000: nothing clips, the clipping gradient is 0 and the decay adds 0.01·1000
    const wide = await oneColumn(
      ['dac.bits=16', 'dac.range.kind=learned', 'dac.range.init=1000', 'adc.kind=ideal'],
      4,
    );
    assert.equal(first(wide.out['hwa.layer.0.query.inside']!), 1);
    assert.ok(Math.abs(first(wide.grads[0]!)) < 1e-3, `clipping gradient ${first(wide.grads[0]!)}`);
    wide.t.adjustGradients(wide.grads, wide.out);
    assert.ok(Math.abs(first(wide.grads[0]!) - 10) < 1e-3, `with decay ${first(wide.grads[0]!)}`);
  });

  it('trains ranges and unit weights with clipping, writes analog_ranges, resumes, and evaluation reads them', async () => {
    const { model } = vitMnist(5);
    const sets = [
      'program.kind=additive',
      'program.sigma=0.06',
      'outputNoise.sigma=0.1',
      'drift.kind=none',
      'tile.rows=16',
      'mapping.clip.kind=sigma',
      'mapping.clip.n=2',
      'dac.range.kind=learned',
      'mapping.conductanceRange.kind=learned',
      'adc.range.max=2',
    ];
    const spec = loadSpec('pcm-lammie', sets);
    const data = openData(parseDataSpec(MNIST), model, { split: 'train', limit: 96 });
    const out = mkdtempSync(join(tmpdir(), 'xbar-hwa-'));
    const paramData = (t: { attrs: unknown }) => (t.attrs as { value: HostArray }).value.data as Float32Array;
    // mapping.clip sigma 2: the bound of each layer is 2 std of its starting weights
    const bounds = new Map(
      model.linearLayers().map(({ name, weight }) => {
        const w = paramData(weight);
        const mean = w.reduce((a, b) => a + b, 0) / w.length;
        return [name, 2 * Math.sqrt(w.reduce((a, b) => a + (b - mean) ** 2, 0) / w.length)];
      }),
    );
    const hw = new NoiseAwareTraining(spec, 3);
    await train(model, data, { epochs: 1, batch: 32, lr: 5e-3, out, hardware: hw, ...quiet });
    assert.ok(existsSync(join(out, LEARNED_RANGES_FILE)));
    const stored = readLearnedRanges(out);
    const layers = model
      .linearLayers()
      .filter((l) => /\.(query|key|value|output|ffnIn|ffnOut)$/.test(l.name));
    assert.equal(stored.inputRanges.size, layers.length);
    assert.equal(stored.columnScales.size, layers.length);
    // η starts at 1: training moved some (the ADC saturates at 2)
    const moved = [...stored.columnScales.values()].reduce((n, e) => n + e.filter((v) => v < 1).length, 0);
    assert.ok(moved > 0, 'no η left 1');
    for (const { name, weight } of layers) {
      const [inDim, outDim] = weight.shape as [number, number];
      const r = stored.inputRanges.get(name)!;
      assert.equal(r.length, Math.ceil(inDim / 16), `${name}: one range per tile of 16 rows`);
      assert.ok(
        r.every((v) => v > 0 && Number.isFinite(v)),
        `${name}: ranges ${r}`,
      );
      const eta = stored.columnScales.get(name)!;
      assert.equal(eta.length, r.length * outDim);
      assert.ok(
        eta.every((v) => v >= 0.01 && v <= 1),
        `${name}: η in [0.01, 1]`,
      );
      // unit weights with clipping: never beyond 2 std of the starting weights
      const top = Math.max(...paramData(weight).map(Math.abs));
      assert.ok(top <= bounds.get(name)! * (1 + 1e-6), `${name}: max |w| ${top} > ${bounds.get(name)}`);
    }
    // evaluation reads the same ranges from the saved folder and runs the analog model with them
    const saved = loadModel(out);
    const learned = learnedRangesFor(out, saved, loadSpec('pcm-lammie', sets));
    assert.deepEqual([...learned.inputRanges.keys()].sort(), layers.map((l) => l.name).sort());
    const analog = new AnalogModel(loadSpec('pcm-lammie', sets), 0);
    analog.setInputRanges(learned.inputRanges);
    analog.setColumnScales(learned.columnScales);
    const test = openData(parseDataSpec(MNIST), saved, { limit: 64 });
    const r = await evaluate(saved, test, { matmuls: analog.matmuls(), fresh: true });
    assert.ok(r.value >= 0 && r.value <= 1);
    // another tiling cannot use them; a folder without the file says how to make one
    assert.throws(
      () =>
        learnedRangesFor(
          out,
          saved,
          loadSpec(
            'pcm-lammie',
            sets.map((s) => (s === 'tile.rows=16' ? 'tile.rows=8' : s)),
          ),
        ),
      { name: 'InputError', message: /input ranges for \d+ row tiles; it was learned for tiles of 16/ },
    );
    assert.throws(() => learnedRangesFor(mkdtempSync(join(tmpdir(), 'xbar-none-')), saved, spec), {
      name: 'InputError',
      message: /analog_ranges.safetensors: not found.*xbar train --hwa/,
    });
    // a second run resumes from the checkpoint with the ranges it learned
    const again = loadModel(out);
    const resumed = await train(again, openData(parseDataSpec(MNIST), again, { split: 'train', limit: 96 }), {
      epochs: 2,
      batch: 32,
      lr: 5e-3,
      out,
      hardware: new NoiseAwareTraining(loadSpec('pcm-lammie', sets), 3),
      ...quiet,
    });
    assert.equal(resumed.history.length, 2);
    assert.equal(resumed.step, 6);
  });
});
