/** A sweep from a program, through the library's entry point alone: define, run, read back. */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openStore, runSweep, sweepOf } from '../../src/index.js';
import { ROOT } from '../helpers/models.js';

describe('sweeps from the library', () => {
  it('runs a sweep defined in code into a store and reads its rows back', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'xbar-lib-sweep-'));
    const sweep = sweepOf(
      {
        name: 'lib',
        model: join(ROOT, 'models/vit-fmnist'),
        data: `fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`,
        limit: 4,
        batch: 4,
        grid: { hw: ['ideal', 'rram-clipformer'], seed: [0, 1] },
      },
      'the test sweep',
    );
    assert.equal(sweep.points.length, 4);
    const store = join(dir, 'lib.duckdb');
    const run = await runSweep(sweep, { store, workers: 1, quiet: true });
    assert.deepEqual(run.failed, []);
    assert.equal(run.storedNow, 4);
    const again = await runSweep(sweep, { store, workers: 1, quiet: true });
    assert.equal(again.storedNow, 0, 'a rerun finds every point stored');
    const reader = await openStore(store);
    try {
      const rows = await reader.rows();
      assert.deepEqual(
        rows.map((r) => r.point.id),
        sweep.points.map((p) => p.id),
      );
      for (const r of rows) {
        const m = r.result!.metrics;
        assert.ok(m['metric']! >= 0 && m['metric']! <= 1, `accuracy ${m['metric']}`);
        assert.ok(m['metric_low']! <= m['metric']! && m['metric']! <= m['metric_high']!);
      }
    } finally {
      await reader.close();
    }
  });
});
