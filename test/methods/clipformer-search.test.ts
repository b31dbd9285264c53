/** ClipFormer on a small random model: SNR gain at high γ, and the automatic search's data hygiene. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { loadSpec } from '../../src/analog/presets.js';
import { type EvalData, holdOut, openData, parseDataSpec, subset } from '../../src/eval/data.js';
import { kvTransformFor, parseClipFormer } from '../../src/methods/clipformer.js';
import { parseSearch, searchClipFormer } from '../../src/methods/clipformer-search.js';
import { measureSnr } from '../../src/methods/snr.js';
import { FIXTURES, vitMnist } from '../helpers/models.js';

const MNIST = join(FIXTURES, 'mnist');
// write noise only (no read noise, ideal converters), so the K/V transform is what differs
const spec = (gamma: number) =>
  loadSpec('rram-clipformer', [
    'dac.mode=pwm',
    'adc.kind=ideal',
    'readNoise.kind=none',
    `attention.device.program.gamma=${gamma}`,
  ]);

/** Records every example index read through the data. */
function recording(data: EvalData): { data: EvalData; read: Set<number> } {
  const read = new Set<number>();
  return {
    read,
    data: {
      ...data,
      inputs: (s, e) => {
        for (let i = s; i < e; i++) read.add(i);
        return data.inputs(s, e);
      },
      inputsAt: (idx) => {
        for (const i of idx) read.add(i);
        return data.inputsAt(idx);
      },
    },
  };
}

describe('ClipFormer on a model', () => {
  it('raises the attention SNR at high γ (paired over instances, tolerance from their spread)', async () => {
    const { model, dir } = vitMnist(5);
    const data = openData(parseDataSpec(`mnist:${MNIST}`), model, { modelDir: dir, limit: 16 });
    const hw = spec(20);
    const n = 6;
    const snrs = async (cf: ReturnType<typeof parseClipFormer> | null) => {
      const v: number[] = [];
      for (let i = 0; i < n; i++) {
        const m = new AnalogModel(hw, 100 + i, cf ? kvTransformFor(cf) : undefined).matmuls();
        v.push((await measureSnr(model, data, m)).blocks[0]!.snrDb);
      }
      return v;
    };
    const off = await snrs(null);
    const on = await snrs(parseClipFormer({ alpha: 3, beta: 1 }));
    // paired over instances (the same seeds draw the same noise): the mean gain must exceed
    // 3 standard errors of the paired differences
    const d = on.map((v, i) => v - off[i]!);
    const mean = d.reduce((a, b) => a + b, 0) / n;
    const se = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1) / n);
    assert.ok(
      mean > 3 * se,
      `SNR gain ${mean.toFixed(2)} dB (se ${se.toFixed(3)}), per instance ${d.map((x) => x.toFixed(2))}`,
    );
  });

  it('the search reads only the calibration part, never the evaluation part', async () => {
    const { model, dir } = vitMnist(5);
    const all = openData(parseDataSpec(`mnist:${MNIST}`), model, { modelDir: dir, limit: 24 });
    const { data, read } = recording(all);
    const { calibration, evaluation } = holdOut(data, 8);
    const r = await searchClipFormer(
      model,
      subset(data, calibration, 'calibration'),
      spec(10),
      parseSearch({ alphas: [1, 3], betas: [1], objective: 'snr', perLayer: true, instances: 1 }),
    );
    assert.deepEqual(
      [...read].sort((a, b) => a - b),
      calibration,
    );
    for (const i of evaluation) assert.ok(!read.has(i), `evaluation example ${i} was read`);
    // no transform is a candidate too (first), then the grid
    assert.equal(r.candidates.length, 3);
    assert.ok(r.candidates[0]!.off);
    assert.equal(r.perLayer?.length, 1);
    // the choice is the best candidate by the objective (null: no transform won)
    const best = Math.max(...r.candidates.map((c) => c.snrDb[0]!));
    const chosen = r.global
      ? r.candidates.find((c) => !c.off && c.alpha === r.global!.alpha)
      : r.candidates[0];
    assert.equal(chosen!.snrDb[0], best);
    assert.throws(() => holdOut(data, 24), /1\.\.23/);
  });
});
