/** An experiment's cells: Student-t 95 % intervals, instances paired by seed, the report's number formats. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { interval95, pairedDifferences, signedInterval, withInterval } from '../../src/experiments/cells.js';
import { t975 } from '../../src/util/math.js';

describe('experiment cells', () => {
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
