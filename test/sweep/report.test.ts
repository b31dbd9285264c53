/**
 * Reports of a sweep: the tables (Markdown and CSV, the interval over seeds computed by hand),
 * the chart specs (valid Vega-Lite with the values given, the Pareto front against a brute-force
 * one), the choice of the x field and its errors, and the files `writeReport` writes.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { TopLevelSpec } from 'vega-lite';
import {
  markdownReport,
  pointsTable,
  progressLine,
  queryTable,
  renderCsv,
  renderMarkdown,
  seedsTable,
  writeReport,
} from '../../src/sweep/report.js';
import { edapKey, metricChart, paretoChart, paretoFront } from '../../src/sweep/report-charts.js';
import {
  chooseX,
  estimate,
  numericFields,
  readSweep,
  seedGroups,
  settingFields,
} from '../../src/sweep/report-data.js';
import type { StoredRow } from '../../src/sweep/types.js';
import { Rng } from '../../src/util/math.js';
import { driftSweep, memoryReader, pointOf, resultOf } from '../helpers/sweep-rows.js';
import { compileStrict } from '../helpers/vega.js';

/** The data values of a spec's layers (and its own), by layer. */
const layerValues = (spec: TopLevelSpec): Record<string, unknown>[][] => {
  const s = spec as {
    data?: { values: Record<string, unknown>[] };
    layer?: { data?: { values: Record<string, unknown>[] } }[];
  };
  return [s.data?.values ?? [], ...(s.layer ?? []).map((l) => l.data?.values ?? [])];
};

describe('sweep report: what varies', () => {
  it('splits the settings into constant and varying, and picks the numeric field with most values as x', () => {
    const rows = driftSweep();
    const fields = settingFields(rows);
    assert.deepEqual(fields.constant, [{ field: 'model', value: 'vit' }]);
    assert.deepEqual(fields.varying, ['time', 'method', 'seed']);
    // seed is numeric and varies, but is never an x axis
    assert.deepEqual(numericFields(rows), ['time']);
    assert.equal(chooseX(rows), 'time');
    assert.equal(chooseX(rows, 'time'), 'time');
  });

  it('--x names an unknown field, a constant one or a text one with the fields allowed', () => {
    const rows = driftSweep();
    assert.throws(() => chooseX(rows, 'adc.bits'), {
      name: 'InputError',
      message:
        '--x adc.bits: adc.bits is not a setting of this sweep (its settings: model, time, method, seed); use time',
    });
    assert.throws(() => chooseX(rows, 'method'), {
      message:
        /^--x method: method is a setting of this sweep, but not one with numbers or times that vary; use time$/,
    });
    assert.throws(() => chooseX(rows, 'seed'), {
      message: '--x seed: the charts average over seeds; use time',
    });
    const flat = rows.filter((r) => r.point.settings['time'] === 1);
    assert.equal(chooseX(flat), undefined);
    assert.throws(() => chooseX(flat, 'time'), {
      message: /this sweep has no setting of numbers or times that varies$/,
    });
  });

  it('groups points that differ only by seed, in order, and estimates each with its Student-t interval', () => {
    const groups = seedGroups(driftSweep());
    assert.equal(groups.length, 6);
    assert.deepEqual(groups[0]!.settings, { model: 'vit', time: 1, method: 'none' });
    assert.deepEqual(
      groups[0]!.rows.map((r) => r.point.settings['seed']),
      [0, 1, 2],
    );
    // 0.6, 0.7, 0.8: mean 0.7, s = 0.1, half width t(0.975; 2) · s/√3 = 4.3027 · 0.057735 = 0.248416
    const e = estimate(groups[0]!.rows);
    assert.equal(e.n, 3);
    assert.ok(Math.abs(e.value - 0.7) < 1e-12);
    assert.ok(Math.abs(e.high - e.value - 0.248416) < 1e-6, `${e.high - e.value}`);
    assert.ok(Math.abs(e.value - e.low - 0.248416) < 1e-6);
    // one instance: its own interval
    const one = estimate(groups[0]!.rows.slice(0, 1));
    assert.deepEqual(
      [one.n, one.low, one.high].map((x) => Math.round(x * 1e9) / 1e9),
      [1, 0.58, 0.62],
    );
    // 0.9, 1.0, 1.0: mean 0.96667, half width 4.3027 · 0.057735/√3 = 0.143423: the high end cut at 1
    const [p0, p1, p2] = groups[0]!.rows.map((r) => r.point);
    const high = estimate([
      { point: p0!, result: resultOf(p0!, 0.9), failures: 0 },
      { point: p1!, result: resultOf(p1!, 1), failures: 0 },
      { point: p2!, result: resultOf(p2!, 1), failures: 0 },
    ]);
    assert.ok(Math.abs(high.low - (0.966667 - 0.143423)) < 1e-5, `${high.low}`);
    assert.equal(high.high, 1);
    // none finished: NaN, n = 0
    assert.ok(Number.isNaN(estimate([{ point: groups[0]!.rows[0]!.point, failures: 1 }]).value));
  });
});

describe('sweep report: tables', () => {
  it('points in Markdown: varying settings as columns, constants above, the metric with its interval', () => {
    const rows = driftSweep();
    const md = renderMarkdown(pointsTable(rows)).split('\n');
    assert.equal(
      md[0],
      '| # | time | method | seed | accuracy [95 % CI] | examples | edap | energy_mJ | seconds |',
    );
    assert.equal(md[1], '| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
    assert.equal(md[2], '| 0 | 1 | none | 0 | 60.00 [58.00, 62.00] | 200 | 1 | 0.5 | 1.5 |');
    assert.equal(md.length, 2 + 18);
    const report = markdownReport({
      sweep: { name: 'drift', source: '', points: [], schema: 1, xbar: '0.1.0' },
      rows,
    });
    assert.match(
      report,
      /^# drift\n\n18 points: 18 done\. Store schema 1, written by xbar 0\.1\.0\.\n\nEvery point: model = vit\.\n/,
    );
  });

  it('over seeds: mean, Student-t interval and n by hand, in Markdown and CSV', () => {
    const t = seedsTable(driftSweep())!;
    const md = renderMarkdown(t).split('\n');
    assert.equal(md[0], '| time | method | accuracy [95 % CI] | n | examples | edap | energy_mJ | seconds |');
    // 0.6, 0.7, 0.8 → 70.00 ± 24.84
    assert.equal(md[2], '| 1 | none | 70.00 [45.16, 94.84] | 3 | 200 | 1 | 0.5 | 1.5 |');
    assert.equal(md.length, 2 + 6);
    const csv = renderCsv(t).split('\n');
    assert.equal(
      csv[0],
      'model,time,method,metric_mean,metric_low,metric_high,n,examples,edap,energy_mJ,seconds',
    );
    const [model, time, method, mean, low, high, n] = csv[1]!.split(',');
    assert.deepEqual([model, time, method, n], ['vit', '1', 'none', '3']);
    assert.ok(Math.abs(Number(mean) - 0.7) < 1e-12);
    assert.ok(Math.abs(Number(low) - (0.7 - 0.248416)) < 1e-6);
    assert.ok(Math.abs(Number(high) - (0.7 + 0.248416)) < 1e-6);
    assert.equal(csv.at(-1), '', 'ends with a line break');
    // without seeds that vary there is nothing to aggregate
    assert.equal(seedsTable(driftSweep().filter((r) => r.point.settings['seed'] === 0)), undefined);
  });

  it('points in CSV: every setting, raw numbers, provenance; failed and pending points', () => {
    const rows: StoredRow[] = driftSweep().slice(0, 3);
    rows[1] = { point: rows[1]!.point, failures: 2 };
    rows[2] = { point: rows[2]!.point, failures: 0 };
    const csv = renderCsv(pointsTable(rows)).split('\n');
    assert.equal(
      csv[0],
      'index,id,model,time,method,seed,metric,metric_low,metric_high,examples,edap,energy_mJ,seconds,failures,host,worker,started,xbar',
    );
    assert.match(
      csv[1]!,
      /^0,p0-\d+,vit,1,none,0,0\.6\d*,0\.58\d*,0\.62\d*,200,1,0\.5,1\.5,0,h,local-1,2026-12-07T00:00:00\.000Z,0\.1\.0$/,
    );
    assert.match(csv[2]!, /^1,p1-\d+,vit,1,none,1,,,,,,,,2,,,,$/);
    const md = renderMarkdown(pointsTable(rows)).split('\n');
    assert.equal(
      md[0],
      '| # | seed | accuracy [95 % CI] | examples | edap | energy_mJ | seconds | failures |',
    );
    assert.equal(md[3], '| 1 | 1 | — | — | — | — | — | 2 |');
    assert.equal(progressLine(rows), '3 points: 1 done, 1 failed (2 attempts), 1 to do.');
  });

  it('CSV quotes commas and quotes; Markdown escapes pipes', () => {
    const point = pointOf(0, { note: 'a, "b" | c', k: 1 });
    const other = pointOf(1, { note: 'x', k: 2 });
    const rows = [
      { point, result: resultOf(point, 0.5), failures: 0 },
      { point: other, result: resultOf(other, 0.5), failures: 0 },
    ];
    assert.match(renderCsv(pointsTable(rows)), /\n0,p0-\d+,"a, ""b"" \| c",1,/);
    assert.match(renderMarkdown(pointsTable(rows)), /\| 0 \| a, "b" \\\| c \| 1 \|/);
    assert.equal(
      queryTable(
        {
          columns: ['n', 'x'],
          rows: [
            [1, null],
            [2, 'a,b'],
          ],
        },
        'csv',
      ),
      'n,x\n1,\n2,"a,b"\n',
    );
    assert.equal(queryTable({ columns: ['n'], rows: [[1]] }, 'md'), '| n |\n| ---: |\n| 1 |\n');
  });
});

describe('sweep report: results as xbar sweep stores them', () => {
  /** time (as durations) × seed, with the ideal metric, SNR and its breakdown, and EDAP's unit. */
  const rows = (): StoredRow[] =>
    ['1h', '1d', '1y'].flatMap((time, t) =>
      [0, 1].map((seed) => {
        const point = pointOf(2 * t + seed, { hw: 'pcm', time, seed });
        const result = resultOf(point, 0.8 - 0.1 * t, {
          metrics: { ideal: 0.85, snr_db: 20 - t, 'snr_db.encoder.0': 21 - t, edap: 3 },
        });
        return { point, result: { ...result, labels: { ...result.labels, edap: 'mJ·ms·mm²' } }, failures: 0 };
      }),
    );

  it('times are an x axis by their seconds, named as written', () => {
    assert.equal(chooseX(rows()), 'time');
    const spec = metricChart(rows(), 'time');
    compileStrict(spec);
    const values = layerValues(spec)[0]!;
    assert.deepEqual(
      values.map((v) => v['x']),
      [3600, 86400, 31557600],
    );
    assert.match(
      JSON.stringify(spec),
      /"labelExpr":"\{\\"3600\\":\\"1h\\",\\"86400\\":\\"1d\\",\\"31557600\\":\\"1y\\"\}\[datum.value\]"/,
    );
  });

  it('units in the Markdown header, the ideal metric in points, breakdowns in CSV only', () => {
    const t = pointsTable(rows());
    assert.deepEqual(t.markdown.header, [
      '#',
      'time',
      'seed',
      'accuracy [95 % CI]',
      'examples',
      'ideal',
      'snr_db',
      'edap (mJ·ms·mm²)',
      'seconds',
    ]);
    assert.deepEqual(t.markdown.rows[0], [
      '0',
      '1h',
      '0',
      '80.00 [78.00, 82.00]',
      '200',
      '85.00',
      '20',
      '3',
      '1.5',
    ]);
    assert.ok(t.csv.header.includes('snr_db.encoder.0'));
    assert.match(JSON.stringify(paretoChart(rows())), /"title":"EDAP \(mJ·ms·mm²\)"/);
  });
});

describe('sweep report: charts', () => {
  it('the metric against x: a line per method, the mean over seeds with its interval, in points', () => {
    const spec = metricChart(driftSweep(), 'time');
    compileStrict(spec);
    const values = layerValues(spec)[0]!;
    assert.deepEqual([...new Set(values.map((v) => v['series']))], ['method=none', 'method=pto']);
    const first = values.find((v) => v['series'] === 'method=none' && v['x'] === 1)!;
    assert.ok(Math.abs((first['y'] as number) - 70) < 1e-9);
    assert.ok(Math.abs((first['hi'] as number) - (70 + 24.8416)) < 1e-3);
    assert.ok(Math.abs((first['lo'] as number) - (70 - 24.8416)) < 1e-3);
    // time spans five decades: a log axis
    assert.match(JSON.stringify(spec), /"scale":\{"type":"log"\}/);
  });

  it('the Pareto front matches a brute-force search on random items, ties and duplicates included', () => {
    const rng = new Rng(7);
    for (let trial = 0; trial < 50; trial++) {
      // few distinct values, so that ties in either coordinate are common
      const items = Array.from({ length: 1 + Math.floor(rng.uniform() * 30) }, (_, i) => ({
        i,
        m: Math.floor(rng.uniform() * 6),
        c: Math.floor(rng.uniform() * 6),
      }));
      const dominated = (a: (typeof items)[number]) =>
        items.some((b) => b.m >= a.m && b.c <= a.c && (b.m > a.m || b.c < a.c));
      const brute = items.filter((a) => !dominated(a)).map((a) => a.i);
      const front = paretoFront(
        items,
        (t) => t.m,
        (t) => t.c,
      ).map((t) => t.i);
      assert.deepEqual(
        [...front].sort((a, b) => a - b),
        brute,
        JSON.stringify(items),
      );
    }
  });

  it('the Pareto chart: the members labelled and joined, the others grey; none without EDAP', () => {
    const rows = driftSweep();
    assert.equal(edapKey(rows), 'edap');
    const spec = paretoChart(rows)!;
    compileStrict(spec);
    const [points, line] = layerValues(spec) as { x: number; y: number; series: string; label: string }[][];
    // by EDAP: method none at 1 s (70 %, EDAP 1), then pto at 1 s (72 %, EDAP 2); the later times are beaten
    assert.deepEqual(
      line!.map((p) => [p.x, Math.round(p.y * 1e9) / 1e9]),
      [
        [1, 70],
        [2, 72],
      ],
    );
    const front = points!.filter((p) => p.series === 'Pareto front');
    assert.deepEqual(
      front.map((p) => p.label),
      ['time=1, method=none', 'time=1, method=pto'],
    );
    assert.equal(points!.filter((p) => p.series === 'dominated' && p.label === '').length, 4);
    const noCost = rows.map((r) => ({ ...r, result: resultOf(r.point, 0.5) }));
    assert.equal(paretoChart(noCost), undefined);
  });

  it('writeReport writes report.md, the CSVs and each chart as .vl.json, .svg and .png', async () => {
    const out = mkdtempSync(join(tmpdir(), 'xbar-report-'));
    const data = await readSweep(memoryReader(driftSweep()));
    const files = await writeReport(data, out);
    const names = files.map((f) => f.slice(out.length + 1)).sort();
    assert.deepEqual(names, [
      'metric-vs-time.png',
      'metric-vs-time.svg',
      'metric-vs-time.vl.json',
      'pareto.png',
      'pareto.svg',
      'pareto.vl.json',
      'points.csv',
      'report.md',
      'seeds.csv',
    ]);
    for (const f of files) assert.ok(existsSync(f), f);
    assert.deepEqual(
      [...readFileSync(join(out, 'pareto.png')).subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''),
      'PNG',
    );
    assert.match(readFileSync(join(out, 'metric-vs-time.svg'), 'utf8'), /^<svg/);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(
      md,
      /## Figures\n\n!\[accuracy against time\]\(metric-vs-time\.svg\)\n!\[accuracy against EDAP\]\(pareto\.svg\)\n$/,
    );
  });
});
