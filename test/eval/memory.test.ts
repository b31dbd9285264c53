/**
 * Memory bounded by the model: a checkpoint loads into its weights alone, and Monte Carlo
 * instances do not accumulate. Measured in a process of its own (this file, run with
 * XBAR_MEMORY_CHILD set to a model folder): the array buffers held after loading, and the peak
 * RSS after each instance.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analogInstances } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import type { EvalData } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { loadModel } from '../../src/models/index.js';
import { savedModel } from '../helpers/models.js';

/** A mid-size BERT: 6 layers of d 512 (19 M weights on crossbars, 76 MB), a small vocabulary. */
const CONFIG = {
  model_type: 'bert',
  vocab_size: 1000,
  hidden_size: 512,
  num_hidden_layers: 6,
  num_attention_heads: 8,
  intermediate_size: 2048,
  num_labels: 2,
};
const INSTANCES = 3;

/** Four 32-token sequences of fixed token ids. */
function sentences(): EvalData {
  const ids = (s: number, e: number) =>
    hostArray(
      'int32',
      [e - s, 32],
      Int32Array.from({ length: (e - s) * 32 }, (_, i) => (i * 37 + s) % 1000),
    );
  return {
    name: 'fixed ids',
    size: 4,
    metrics: ['accuracy'],
    regression: false,
    targets: new Float64Array(4),
    inputs: (s, e) => ({ input_ids: ids(s, e) }),
    inputsAt: () => {
      throw new Error('not used');
    },
  };
}

const peak = (): number => process.resourceUsage().maxRSS * 1024;

/** The child: load, then Monte Carlo instances on `pcm-aihwkit`; prints what it measured. */
async function child(dir: string): Promise<void> {
  const held = () => process.memoryUsage().arrayBuffers;
  const before = held();
  const model = loadModel(dir);
  const loaded = held() - before;
  // the cells as pcm-aihwkit lays them out, programmed without the device model's cost
  const spec = loadSpec('pcm-aihwkit', ['program.kind=none', 'drift.kind=none'], model);
  const instance = analogInstances(model, spec);
  const data = sentences();
  const peaks: number[] = [];
  for (let seed = 0; seed < INSTANCES; seed++) {
    await evaluate(model, data, { matmuls: await instance(seed), fresh: true, batch: 4 });
    peaks.push(peak());
  }
  const weights = model.params().reduce((s, p) => s + p.size * 4, 0);
  const crossbar = model.linearLayers().reduce((s, l) => s + l.weight.size * 4, 0);
  console.log(JSON.stringify({ loaded, peaks, weights, crossbar }));
}

const self = fileURLToPath(import.meta.url);
const childDir = process.env['XBAR_MEMORY_CHILD'];
if (childDir) {
  await child(childDir);
} else {
  describe('memory', () => {
    it('a checkpoint loads into its weights alone; Monte Carlo instances do not accumulate', () => {
      const { dir } = savedModel(CONFIG);
      const out = execFileSync(process.execPath, [self], {
        encoding: 'utf8',
        env: { ...process.env, XBAR_MEMORY_CHILD: dir },
      });
      const m = JSON.parse(out.trim().split('\n').pop()!) as {
        loaded: number;
        peaks: number[];
        weights: number;
        crossbar: number;
      };
      const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
      const what = `loaded ${mb(m.loaded)}, peaks ${m.peaks.map(mb).join(', ')}; weights ${mb(m.weights)} (${mb(m.crossbar)} on crossbars)`;
      // the weights alone: a file read whole and the weights decoded from it would be twice them
      assert.ok(m.loaded < 1.05 * m.weights, what);
      // an instance kept alive into the next, or a copy of the model per instance, adds at least
      // the cells and their squares (2× the crossbar weights) to each later instance's peak
      assert.ok(m.peaks.at(-1)! - m.peaks[0]! < 0.5 * m.crossbar, what);
    });
  });
}
