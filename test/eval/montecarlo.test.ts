/** Monte Carlo evaluation: ideal vs instances, seeds that reproduce, and the CLI's JSON. */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analogInstances } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { monteCarlo } from '../../src/eval/montecarlo.js';
import { FIXTURES, ROOT, vitMnist } from '../helpers/models.js';

const MNIST = join(FIXTURES, 'mnist');
const mnistModel = () => vitMnist(5);

describe('monteCarlo', () => {
  it('reports ideal, instances and seeds; the same seed repeats the numbers, another does not', async () => {
    const { model, dir } = mnistModel();
    const data = openData(parseDataSpec(`mnist:${MNIST}`), model, { modelDir: dir, limit: 40 });
    const spec = loadSpec('fefet-trex', ['program.sigma=0.5']);
    const instance = analogInstances(model, spec);
    const a = await monteCarlo(model, data, instance, { repeats: 3, seed: 11, batch: 20 });
    const b = await monteCarlo(model, data, instance, { repeats: 3, seed: 11, batch: 20 });
    const c = await monteCarlo(model, data, instance, { repeats: 3, seed: 12, batch: 20 });
    assert.deepEqual(a.seeds, [11, 12, 13]);
    assert.deepEqual(b.values, a.values);
    assert.deepEqual(c.values.slice(0, 2), a.values.slice(1)); // instance seeds 12, 13 again
    // seeds 11, 12, 13 program different weights (σ = 0.5): their accuracies (in steps of 1/40)
    // are not all the same
    assert.ok(new Set(a.values).size > 1, `instances: ${a.values}`);
    assert.notDeepEqual(c.values, a.values);
    assert.equal(a.values.length, 3);
    assert.ok(Math.abs(a.mean - a.values.reduce((s, v) => s + v, 0) / 3) < 1e-12);
  });

  it('xbar eval --hw --json prints metric, ideal, mean, std, repeats and values', () => {
    const { dir } = mnistModel();
    const out = execFileSync(
      process.execPath,
      [
        join(ROOT, 'bin/xbar.js'),
        'eval',
        '--model',
        dir,
        '--data',
        `mnist:${MNIST}`,
        '--limit',
        '20',
        '--hw',
        'pcm-aihwkit',
        '--repeats',
        '2',
        '--time',
        '1h',
        '--json',
      ],
      { encoding: 'utf8' },
    );
    const j = JSON.parse(out);
    for (const k of ['metric', 'ideal', 'mean', 'std', 'repeats', 'values', 'seeds']) assert.ok(k in j, k);
    // the cost of the same model on the same hardware comes with it
    for (const k of ['energy_mJ', 'delay_ms', 'area_mm2', 'edap', 'tops_per_w', 'macs'])
      assert.ok(j.cost[k] > 0, k);
    assert.equal(j.timeS, 3600);
    assert.equal(j.values.length, 2);
  });
});
