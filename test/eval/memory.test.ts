/**
 * Memory bounded by the model: a checkpoint loads into its weights alone, and no Monte Carlo
 * instance outlives its evaluation. Measured in a process of its own (this file, run with
 * XBAR_MEMORY_CHILD set to a model folder), whose array buffers count nothing else; peak RSS
 * of real sizes is bench/memory.ts's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { analogInstances } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import type { EvalData } from '../../src/eval/data.js';
import { monteCarlo } from '../../src/eval/montecarlo.js';
import { topoSort } from '../../src/graph/autodiff.js';
import { type HostArray, hostArray } from '../../src/graph/ndarray.js';
import type { Matmuls } from '../../src/models/encoder.js';
import { loadModel, type Model } from '../../src/models/index.js';
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

/** The programmed cell arrays of an instance's graph (the values of its `analog.*` params). */
function cellArrays(model: Model, matmuls: Matmuls): object[] {
  const { logits } = model.graph({ batch: 1, seqLen: 8 }, matmuls);
  return topoSort([logits])
    .filter((t) => t.op === 'param' && (t.attrs as { name: string }).name.startsWith('analog.'))
    .map((t) => (t.attrs as { value: HostArray }).value.data);
}

/** Lets the garbage collector free what nothing references (the child runs with --expose-gc). */
async function collect(): Promise<void> {
  for (let i = 0; i < 5; i++) {
    (globalThis as { gc?: () => void }).gc!();
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * A Monte Carlo run on `pcm-aihwkit` (the cells as it lays them out, programmed without the
 * device model's cost), counting before each instance the cell arrays of earlier ones still alive.
 */
async function monteCarloRun(
  model: Model,
  alive: Set<number>,
  collected: FinalizationRegistry<number>,
): Promise<{ perInstance: number[]; before: number[] }> {
  const spec = loadSpec('pcm-aihwkit', ['program.kind=none', 'drift.kind=none'], model);
  const instance = analogInstances(model, spec);
  let programmed = 0;
  const perInstance: number[] = [];
  const before: number[] = [];
  await monteCarlo(
    model,
    sentences(),
    async (seed) => {
      await collect();
      before.push(alive.size);
      const matmuls = await instance(seed);
      const cells = cellArrays(model, matmuls);
      for (const a of cells) {
        alive.add(programmed);
        collected.register(a, programmed++);
      }
      perInstance.push(cells.length);
      return matmuls;
    },
    { repeats: INSTANCES, seed: 0, batch: 4 },
  );
  return { perInstance, before };
}

/** The child: load, then a Monte Carlo run; prints what it measured. */
async function child(dir: string): Promise<void> {
  const held = () => process.memoryUsage().arrayBuffers;
  const start = held();
  const model = loadModel(dir);
  // what loading keeps: garbage the collector has not yet reached (a tensor's bytes read
  // before it was transposed…) varies with the machine and is no part of it
  await collect();
  const loaded = held() - start;
  const alive = new Set<number>();
  // outside the run: a registry that is itself collected reports nothing
  const collected = new FinalizationRegistry<number>((id) => alive.delete(id));
  const { perInstance, before } = await monteCarloRun(model, alive, collected);
  await collect();
  const weights = model.params().reduce((s, p) => s + p.size * 4, 0);
  console.log(JSON.stringify({ loaded, weights, perInstance, before, after: alive.size }));
}

const self = fileURLToPath(import.meta.url);
const childDir = process.env['XBAR_MEMORY_CHILD'];
if (childDir) {
  await child(childDir);
} else {
  describe('memory', () => {
    it('a checkpoint loads into its weights alone; no Monte Carlo instance outlives its evaluation', () => {
      const { dir } = savedModel(CONFIG);
      const out = execFileSync(process.execPath, ['--expose-gc', self], {
        encoding: 'utf8',
        env: { ...process.env, XBAR_MEMORY_CHILD: dir },
      });
      const m = JSON.parse(out.trim().split('\n').pop()!) as {
        loaded: number;
        weights: number;
        perInstance: number[];
        before: number[];
        after: number;
      };
      const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MB`;
      const what = `loaded ${mb(m.loaded)}, weights ${mb(m.weights)}; cell arrays per instance ${m.perInstance}, alive before each instance ${m.before}, after the run ${m.after}`;
      // the weights alone: weights decoded from a file kept whole would be twice them
      assert.ok(m.loaded < 1.2 * m.weights, what);
      // before each instance, at most the one before it is alive (its arrays are programmed
      // over), and none once the run is done: no instance is kept (by a cached session, a copy
      // of the model…)
      assert.equal(m.perInstance.length, INSTANCES, what);
      assert.ok(m.perInstance[0]! > 0, what);
      assert.ok(
        m.before.every((n, i) => n <= (i > 0 ? m.perInstance[i - 1]! : 0)),
        what,
      );
      assert.equal(m.after, 0, what);
    });
  });
}
