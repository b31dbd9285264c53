/** The experiment runner: seeds per instance, atomic results, resume without recomputing. */
import assert from 'node:assert/strict';
import { linkSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  Experiment,
  interval95,
  pairedDifferences,
  signedInterval,
  withInterval,
} from '../../src/experiments/runner.js';
import { t975 } from '../../src/util/math.js';
import { NOISE_STREAM } from '../../src/util/philox.js';

describe('Experiment', () => {
  it('refuses to continue results drawn from another noise stream (absent: stream 1)', async () => {
    const out = mkdtempSync(join(tmpdir(), 'xbar-exp-'));
    const a = new Experiment(out, 'demo', { k: 1 }, { quiet: true });
    await a.cell('c', {}, 1, 0, async (seed) => ({ value: seed }));
    const file = join(out, 'results.json');
    const record = JSON.parse(readFileSync(file, 'utf8'));
    assert.equal(record.noiseStream, NOISE_STREAM);
    // results that do not record their stream
    delete record.noiseStream;
    writeFileSync(file, JSON.stringify(record));
    const again = new Experiment(out, 'demo', { k: 1 }, { quiet: true });
    assert.equal((await again.cell('c', {}, 1, 0, async () => ({ value: 99 }))).mean, 0);
    await assert.rejects(
      again.cell('c', {}, 2, 0, async () => ({ value: 99 })),
      /results\.json: noiseStream: 1 is not allowed, this xbar draws stream 3 .*use another --out/,
    );
  });

  it('records instances with seeds, resumes a cell where it stopped, refuses other settings', async () => {
    const out = mkdtempSync(join(tmpdir(), 'xbar-exp-'));
    const calls: number[] = [];
    const inst = async (seed: number) => {
      calls.push(seed);
      return { value: seed / 10, extra: { twice: seed * 2 } };
    };
    const a = new Experiment(out, 'demo', { k: 1 }, { quiet: true });
    await a.cell('c', { m: 'x' }, 2, 5, inst);
    // a second name for the results of 2 instances: each save renames a new file over
    // results.json, so the old one stays whole (a save in place would change it under a reader)
    const old = join(mkdtempSync(join(tmpdir(), 'xbar-exp-')), 'old.json');
    linkSync(join(out, 'results.json'), old);
    const before = readFileSync(old, 'utf8');
    // "interrupted": a new run asks for 4 instances and computes only the 2 missing ones
    const b = new Experiment(out, 'demo', { k: 1 }, { quiet: true });
    const c = await b.cell('c', { m: 'x' }, 4, 5, inst);
    assert.equal(readFileSync(old, 'utf8'), before);
    assert.deepEqual(readdirSync(out), ['results.json'], 'no temporary file left');
    assert.deepEqual(calls, [5, 6, 7, 8]);
    assert.deepEqual(
      c.instances.map((i) => i.seed),
      [5, 6, 7, 8],
    );
    assert.ok(Math.abs(c.mean - 0.65) < 1e-12);
    const saved = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    assert.equal(saved.cells.c.instances[3].extra.twice, 16);
    assert.ok(saved.machine.cores >= 1);
    let n = 0;
    await b.once('x', async () => ++n);
    await new Experiment(out, 'demo', { k: 1 }, { quiet: true }).once('x', async () => ++n);
    assert.equal(n, 1);
    assert.throws(() => new Experiment(out, 'demo', { k: 2 }, { quiet: true }), /other settings/);
  });

  it('gives 95 % intervals with Student’s t and pairs instances by seed', () => {
    // t(0.975; ν) from the table (ν ≤ 30) and the expansion beyond: R's qt(0.975, c(1, 4, 30, 40, 120))
    for (const [df, t] of [
      [1, 12.7062],
      [4, 2.7764],
      [30, 2.0423],
      [40, 2.0211],
      [120, 1.9799],
    ] as const)
      assert.ok(Math.abs(t975(df) - t) < 1e-4, `ν ${df}: ${t975(df)}`);
    const i = interval95([1, 2, 3, 4, 5]);
    assert.equal(i.mean, 3);
    assert.ok(Math.abs(i.half - 2.7764 * Math.sqrt(2.5 / 5)) < 1e-4);
    assert.ok(Number.isNaN(interval95([1]).half));
    const cell = (values: [number, number][]) => ({
      id: '',
      labels: {},
      mean: 0,
      std: 0,
      instances: values.map(([seed, value]) => ({ seed, value })),
    });
    assert.deepEqual(
      pairedDifferences(
        cell([
          [1, 5],
          [2, 7],
          [3, 9],
        ]),
        cell([
          [3, 1],
          [1, 2],
        ]),
      ),
      [3, 8],
    );
    // 0.1, 0.2, 0.3: mean 0.2, se 0.1/√3, half 4.3027·se = 0.2484 → in points
    assert.equal(withInterval([0.1, 0.2, 0.3]), '20.00 [−4.84, 44.84]');
    assert.equal(signedInterval([0.1, 0.2, 0.3]), '+20.00 [−4.84, 44.84]');
    assert.equal(signedInterval([-0.1, -0.2, -0.3]), '−20.00 [−44.84, 4.84]');
    assert.equal(withInterval([0.5]), '50.00');
  });
});
