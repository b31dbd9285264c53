import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { currentKernels, nativeApplies } from '../../src/analog/native-mvm.js';
import { loadSpec } from '../../src/analog/presets.js';
import { programInWorkers, runProgramJob } from '../../src/analog/program-workers.js';
import { Predictor } from '../../src/eval/predict.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import { Rng } from '../../src/util/math.js';
import { maxRelErr } from '../helpers/check.js';
import { vitMnist } from '../helpers/models.js';

/** Each static layer's cell arrays (weights, squares, scale), by name. */
type Param = { attrs: { value: HostArray } };
const arraysOf = (m: AnalogModel): [string, Float32Array[]][] =>
  // biome-ignore lint/suspicious/noExplicitAny: the layers are private; the test reads their params
  [...((m as any).layers as Map<string, { cells: Record<string, Param> | null; scale: Param }>)].map(
    ([name, l]) => [
      name,
      [...(l.cells ? [l.cells['weights']!, l.cells['squares']!] : []), l.scale].map(
        (t) => t.attrs.value.data as Float32Array,
      ),
    ],
  );
const cellsOf = (m: AnalogModel) => arraysOf(m).map(([name, a]) => [name, ...a.map((v) => Array.from(v))]);

describe('programming in worker threads', () => {
  it('gives each layer the cells programming it alone gives, in the order of the jobs', async () => {
    const spec = loadSpec('pcm-aihwkit');
    const xbar = spec.crossbar('layer.0.ffnIn');
    const jobs = [
      [40, 24],
      [600, 30],
      [16, 16],
    ].map(([i, o], k) => ({
      weights: {
        dtype: 'float32',
        shape: [i!, o!],
        data: new Rng(k).fillNormal(new Float32Array(i! * o!)),
      } as HostArray,
      xbar,
      timeS: 3600,
      seed: 100 + k,
    }));
    const parallel = await programInWorkers(jobs, 2);
    jobs.forEach((j, k) => {
      const alone = runProgramJob(j);
      assert.deepEqual(parallel[k]!.weights, alone.weights, `job ${k}: weights`);
      assert.deepEqual(parallel[k]!.squares, alone.squares, `job ${k}: squares`);
      assert.deepEqual(parallel[k]!.scale, alone.scale, `job ${k}: scale`);
      assert.deepEqual(parallel[k]!.rowTiles, alone.rowTiles);
    });
  });

  it('AnalogModel.prepare programs every mapped layer as building the graph would', async () => {
    const { model } = vitMnist();
    for (const hw of ['pcm-aihwkit', 'rram-clipformer']) {
      const prepared = new AnalogModel(loadSpec(hw), 5);
      await prepared.prepare(model);
      const built = new AnalogModel(loadSpec(hw), 5);
      model.graph({ batch: 1 }, built.matmuls());
      const cells = cellsOf(prepared);
      assert.ok(cells.length >= 6, `${hw}: ${cells.length} layers prepared`);
      assert.deepEqual(cells, cellsOf(built), hw);
      // and the graph then uses those arrays (no second programming)
      const before = arraysOf(prepared);
      model.graph({ batch: 1 }, prepared.matmuls());
      for (const [k, [name, a]] of arraysOf(prepared).entries()) {
        for (const [i, v] of a.entries())
          assert.equal(v, before[k]![1][i], `${hw} ${name}: the prepared array`);
      }
    }
  });

  it('over the cells budget, holds no cells and programs each layer per run: the same logits', async () => {
    const { model } = vitMnist();
    // two 28×28 single-channel images
    const pixels = hostArray('float32', [2, 1, 28, 28], new Rng(9).fillNormal(new Float32Array(2 * 28 * 28)));
    const logits = async (hw: string, budgetGB: string) => {
      const before = process.env['XBAR_CELLS_GB'];
      process.env['XBAR_CELLS_GB'] = budgetGB;
      try {
        const m = new AnalogModel(loadSpec(hw), 7);
        await m.prepare(model);
        const p = new Predictor(model, { matmuls: m.matmuls() });
        // two runs: the second programs the cells again, as every batch does
        const runs = [await p.logits({ pixel_values: pixels }), await p.logits({ pixel_values: pixels })];
        return { runs, arrays: arraysOf(m) };
      } finally {
        if (before === undefined) delete process.env['XBAR_CELLS_GB'];
        else process.env['XBAR_CELLS_GB'] = before;
      }
    };
    for (const hw of ['pcm-aihwkit', 'rram-clipformer']) {
      const held = await logits(hw, '');
      const perRun = await logits(hw, '0');
      // held: weights, squares and scale per layer; per run: the scale alone, programmed alike
      assert.ok(
        held.arrays.every(([, a]) => a.length === 3),
        hw,
      );
      assert.ok(
        perRun.arrays.every(([, a]) => a.length === 1),
        hw,
      );
      assert.deepEqual(
        perRun.arrays.map(([n, a]) => [n, Array.from(a[0]!)]),
        held.arrays.map(([n, a]) => [n, Array.from(a[2]!)]),
        hw,
      );
      // the same cells: bit for bit where the kernel computes the products; through the ONNX
      // graphs, cut where the cells enter, ONNX Runtime may round the last bits otherwise
      const kernel = currentKernels() !== null && nativeApplies(loadSpec(hw).crossbar('layer.0.ffnIn'));
      for (const r of [0, 1]) {
        const [got, want] = [perRun.runs[r]!.data as Float32Array, held.runs[r]!.data as Float32Array];
        if (kernel) assert.deepEqual(got, want, `${hw} run ${r}`);
        else assert.ok(maxRelErr(got, want) <= 1e-5, `${hw} run ${r}: ${maxRelErr(got, want)}`);
      }
    }
  });
});
