/**
 * `xbar report` on a real store: rows written through the DuckDB store's `put` (no model runs),
 * then the report as a user runs it: Markdown, CSV, the files of --out, --sql; and its errors
 * (an unknown --x, a store that does not exist, a store of a newer schema).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DuckDBInstance } from '@duckdb/node-api';
import { DuckDBStore, SCHEMA_VERSION } from '../../src/sweep/duckdb.js';
import { pointId } from '../../src/sweep/file.js';
import type { Point } from '../../src/sweep/types.js';
import { XBAR_VERSION } from '../../src/util/version.js';
import { xbarAsync } from '../helpers/cli.js';
import { resultOf } from '../helpers/sweep-rows.js';

const dir = mkdtempSync(join(tmpdir(), 'xbar-report-cli-'));
const store = join(dir, 'drift.duckdb');

/** time × seed, 2 × 2 points, the last one failed once and not stored; metric 0.9 − 0.1·t + 0.02·seed. */
async function writeStore(path: string): Promise<void> {
  const points: Point[] = [];
  for (const time of ['1h', '1y'])
    for (const seed of [0, 1]) {
      const settings = { model: 'm', time, seed };
      points.push({ id: pointId(settings), index: points.length, settings });
    }
  const s = await DuckDBStore.open(path);
  try {
    await s.begin({ name: 'drift', source: 'name: drift\n', points });
    for (const p of points.slice(0, 3)) {
      const t = p.settings['time'] === '1h' ? 0 : 1;
      await s.put(
        resultOf(p, 0.9 - 0.1 * t + 0.02 * (p.settings['seed'] as number), { metrics: { edap: 1 + t } }),
      );
    }
    await s.fail(points[3]!.id, 'out of memory', resultOf(points[3]!, 0).provenance);
  } finally {
    await s.close();
  }
}

describe('xbar report', () => {
  before(() => writeStore(store));

  it('prints the Markdown report, and with --format csv the points as CSV', async () => {
    const md = await xbarAsync(['report', store]);
    assert.equal(md.status, 0, md.stderr);
    assert.match(
      md.stdout,
      /^# drift\n\n4 points: 3 done, 1 failed \(1 attempt\)\. Store schema \d+, written by xbar /,
    );
    assert.match(md.stdout, /\nEvery point: model = m\.\n/);
    assert.match(md.stdout, /\n\| 0 \| 1h \| 0 \| 90\.00 \[88\.00, 92\.00\] \| 200 \| 1 \| 1\.5 \| 0 \|\n/);
    assert.match(md.stdout, /\n\| 3 \| 1y \| 1 \| — \| — \| — \| — \| 1 \|\n/);
    // over seeds: 0.90 and 0.92 → 91.00 ± 12.706 · 0.01 = [78.29, 103.71], cut at 100
    assert.match(md.stdout, /\n\| 1h \| 91\.00 \[78\.29, 100\.00\] \| 2 \|/);
    // 1y: one instance, its own interval
    assert.match(md.stdout, /\n\| 1y \| 80\.00 \[78\.00, 82\.00\] \| 1 \|/);
    const csv = await xbarAsync(['report', store, '--format', 'csv']);
    assert.equal(csv.status, 0, csv.stderr);
    const lines = csv.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 5);
    assert.match(
      lines[0]!,
      /^index,id,model,time,seed,metric,metric_low,metric_high,examples,edap,seconds,failures,/,
    );
    assert.match(lines[1]!, /^0,[0-9a-f]{16},m,1h,0,0\.9,0\.88\d*,0\.92\d*,200,1,1\.5,0,h,local-1,/);
  });

  it('--out writes the report, the CSVs and the charts', async () => {
    const out = join(dir, 'out');
    const r = await xbarAsync(['report', store, '--out', out, '--x', 'time']);
    assert.equal(r.status, 0, r.stderr);
    for (const f of [
      'report.md',
      'points.csv',
      'seeds.csv',
      'metric-vs-time.svg',
      'metric-vs-time.png',
      'metric-vs-time.vl.json',
      'pareto.svg',
      'pareto.png',
      'pareto.vl.json',
    ])
      assert.ok(existsSync(join(out, f)), f);
    const spec = JSON.parse(readFileSync(join(out, 'metric-vs-time.vl.json'), 'utf8')) as {
      data: { values: { x: number }[] };
    };
    assert.deepEqual(
      spec.data.values.map((v) => v.x),
      [3600, 31557600],
    );
  });

  it('--sql prints the answer of a query as a table or CSV', async () => {
    const sql =
      "SELECT p.settings->>'time' AS time, count(*) AS n, round(avg(CAST(r.metrics->>'metric' AS DOUBLE)), 4) AS metric FROM points p JOIN results r USING (id) GROUP BY 1 ORDER BY 1";
    const md = await xbarAsync(['report', store, '--sql', sql]);
    assert.equal(md.status, 0, md.stderr);
    assert.equal(
      md.stdout,
      '| time | n | metric |\n| --- | ---: | ---: |\n| 1h | 2 | 0.91 |\n| 1y | 1 | 0.8 |\n',
    );
    const csv = await xbarAsync([
      'report',
      store,
      '--sql',
      'SELECT count(*) AS failed FROM failures',
      '--format',
      'csv',
    ]);
    assert.equal(csv.stdout, 'failed\n1\n');
    const write = await xbarAsync(['report', store, '--sql', 'DELETE FROM results']);
    assert.equal(write.status, 1);
    assert.match(write.stderr, /^xbar: --sql: .*read-only/i);
  });

  it('errors: an unknown --x, a store that does not exist, one being written, one of a newer schema', async () => {
    const x = await xbarAsync(['report', store, '--x', 'adc.bits']);
    assert.equal(x.status, 1);
    assert.equal(
      x.stderr.trim(),
      'xbar: --x adc.bits: adc.bits is not a setting of this sweep (its settings: model, time, seed); use time',
    );
    const missing = join(dir, 'none.duckdb');
    const none = await xbarAsync(['report', missing]);
    assert.equal(none.status, 1);
    assert.match(none.stderr, new RegExp(`^xbar: ${missing}: no store there`));
    assert.ok(!existsSync(missing), 'reading creates nothing');

    // a store being written: DuckDB lets no other process open it
    const busy = await DuckDBStore.open(store);
    try {
      const r = await xbarAsync(['report', store]);
      assert.equal(r.status, 1);
      assert.equal(
        r.stderr.trim(),
        `xbar: ${store}: another process is writing it (${store}.lock names it), and DuckDB lets no other open it meanwhile; follow a sweep through ${store}.status.json and report when it ends`,
      );
    } finally {
      await busy.close();
    }

    const newer = join(dir, 'newer.duckdb');
    await writeStore(newer);
    const db = await DuckDBInstance.create(newer);
    const c = await db.connect();
    await c.run(`UPDATE meta SET value = '${SCHEMA_VERSION + 1}' WHERE key = 'schema_version'`);
    c.closeSync();
    db.closeSync();
    const r = await xbarAsync(['report', newer]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr.trim(),
      `xbar: ${newer}: written with store schema ${SCHEMA_VERSION + 1} by a newer xbar; this xbar (${XBAR_VERSION}) reads schemas up to ${SCHEMA_VERSION}: use that xbar or a newer one`,
    );
  });
});
