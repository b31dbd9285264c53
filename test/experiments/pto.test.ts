/**
 * The post-training experiment as a sweep. A `pto-instance` point gives what the old
 * experiment's instance closure gave for the same seed (the method functions called directly as
 * it called them), and a `pto-saturation` point the conductance rule's counts; a tiny run stores
 * every point once (a 1 h cell of the table and of the time sweep share theirs), reports from the
 * store, and a rerun runs nothing. With an ADC range set on data (`--set
 * adc.range.kind=calibrated`) every input-range cell runs with ADC ranges calibrated per
 * instance, the conductance rule is left out (it needs a fixed I_S) and the report says so; on a
 * small model without noise, whose converters then make the difference, the calibrated ranges
 * agree with the ideal model better in every cell than a fixed I_S far above the model's column
 * currents. What the cells vary is refused by name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { analogInstances } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import { holdOut, openData, parseDataSpec, subset } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { metricInterval95 } from '../../src/eval/metrics.js';
import {
  calibrateConductanceRanges,
  calibrateInputRanges,
  type SaturationCounts,
} from '../../src/methods/pto.js';
import { openStore } from '../../src/sweep/duckdb.js';
import { sweepOf } from '../../src/sweep/file.js';
import { createPointRunner } from '../../src/sweep/point.js';
import { type PtoOptions, runPto } from '../../src/sweep/pto.js';
import { xbar } from '../helpers/cli.js';
import { relabelledFashionMnist, tinyFashionMnist } from '../helpers/data.js';
import { vitMnist } from '../helpers/models.js';

const { model, dir } = vitMnist(5);
const N = 16;
const opened = openData(parseDataSpec(`fashion-mnist:${tinyFashionMnist(N)}`), model, { modelDir: dir });
// labelled with the ideal model's own predictions: accuracy is the agreement with the ideal model
const dataSpec = `fashion-mnist:${relabelledFashionMnist(N, (await evaluate(model, opened)).predictions)}`;
const data = openData(parseDataSpec(dataSpec), model, { modelDir: dir });
const layers = model.linearLayers().map((l) => l.name);
const CALIBRATION = 2;
const LIMIT = 12;

// the converters alone (the drift compensation that reads through the periphery needs a fixed ADC
// range: the noise-free one, which without drift is 1)
const converters = [
  'program.kind=none',
  'outputNoise.kind=none',
  'drift.kind=none',
  'driftCompensation=global-ideal',
];

const options = (sets: string[], o: Partial<PtoOptions> = {}): PtoOptions => ({
  models: [{ name: 'as trained', dir, model, data }],
  dataSpec,
  hw: 'pcm-lammie',
  sets,
  out: mkdtempSync(join(tmpdir(), 'xbar-pto-')),
  repeats: 1,
  timeRepeats: 1,
  seed: 0,
  calibration: CALIBRATION,
  percentile: 99.99,
  sigmas: 3,
  current: 'signed',
  limit: LIMIT,
  quiet: true,
  ...o,
});

/** One point of a sweep with the data and this list entry. */
const pointOf = (entry: Record<string, unknown>) =>
  sweepOf({ name: 'one', data: dataSpec, list: [entry] }, 'test').points[0]!;

describe('the post-training experiment', () => {
  it('gives, at a point, what the old instance closure computed for the same seed', async () => {
    // the old closure for a model without learned ranges and with a fixed ADC range
    const sigmas = 1;
    const percentile = 99;
    const split = holdOut(data, CALIBRATION);
    const calib = subset(data, split.calibration, 'calibration');
    const evalData = subset(data, split.evaluation.slice(0, LIMIT), 'evaluation');
    const specAt = (range: string, timeS: number, conductance: string, more: string[] = []) =>
      loadSpec(
        'pcm-lammie',
        [
          ...more,
          `timeS=${timeS}`,
          ...(conductance === 'calibrated'
            ? [
                'mapping.conductanceRange.kind=calibrated',
                `mapping.conductanceRange.sigmas=${sigmas}`,
                `mapping.conductanceRange.samples=${CALIBRATION}`,
                'mapping.conductanceRange.current=signed',
              ]
            : []),
          ...(range === 'calibrated'
            ? [
                'dac.range.kind=calibrated',
                `dac.range.percentile=${percentile}`,
                `dac.range.samples=${CALIBRATION}`,
              ]
            : [`dac.range.kind=${range}`]),
        ],
        layers,
      );
    const instance = async (seed: number, range: string, timeS: number, conductance: string) => {
      const spec = specAt(range === 'recalibrated' ? 'calibrated' : range, timeS, conductance);
      const analog = new AnalogModel(spec, seed);
      if (range === 'calibrated' || range === 'recalibrated') {
        const probe = new AnalogModel(specAt('dynamic', range === 'calibrated' ? 1 : timeS, 'full'), seed);
        analog.setInputRanges(
          await calibrateInputRanges(
            model,
            () => calib,
            spec,
            () => {},
            probe.matmuls(),
          ),
        );
      }
      if (conductance === 'calibrated')
        analog.setColumnScales(
          await calibrateConductanceRanges(
            model,
            () => calib,
            spec,
            analog.inputRanges,
            () => {},
            new Map(),
          ),
        );
      await analog.prepare(model);
      return evaluate(model, evalData, { matmuls: analog.matmuls(), fresh: true, batch: 5 });
    };

    const run = createPointRunner();
    const cells = [
      { range: 'calibrated', conductance: 'calibrated', time: 3600 },
      { range: 'recalibrated', conductance: 'full', time: 86_400 },
      { range: 'dynamic', conductance: 'calibrated', time: 31_536_000 },
    ];
    const values = new Set<number>();
    for (const c of cells) {
      const point = pointOf({
        task: 'pto-instance',
        model: dir,
        limit: LIMIT,
        hw: 'pcm-lammie',
        time: c.time,
        'pto.calibration': CALIBRATION,
        'pto.range': c.range,
        'pto.conductance': c.conductance,
        'pto.percentile': percentile,
        'pto.sigmas': sigmas,
        'pto.current': 'signed',
        batch: 5,
        seed: 4,
      });
      const got = await run(point);
      const want = await instance(4, c.range, c.time, c.conductance);
      const ci = metricInterval95(want.metric, want.predictions, evalData.targets);
      assert.deepEqual(
        got.metrics,
        { metric: want.value, metric_low: ci.low, metric_high: ci.high, examples: LIMIT },
        JSON.stringify(c),
      );
      assert.equal(got.labels?.['metric_name'], 'accuracy');
      values.add(want.value);
    }

    // the saturation counts at a low I_S, where the rule has columns to shrink
    const counts: SaturationCounts[] = [];
    await calibrateConductanceRanges(
      model,
      () => calib,
      specAt('dynamic', 3600, 'calibrated', ['adc.range.max=1']),
      new Map(),
      (_, c) => counts.push(c),
    );
    const got = await run(
      pointOf({
        task: 'pto-saturation',
        model: dir,
        hw: 'pcm-lammie',
        'saturation.max': 1,
        'saturation.calibration': CALIBRATION,
        'saturation.sigmas': sigmas,
        'saturation.current': 'signed',
      }),
    );
    assert.deepEqual(got.metrics, {
      shrunk: counts.reduce((a, c) => a + c.shrunk, 0),
      columns: counts.reduce((a, c) => a + c.columns, 0),
      beyond_mean: counts.reduce((a, c) => a + c.beyond, 0) / counts.length,
      beyond_max: Math.max(...counts.map((c) => c.beyond)),
    });
    assert.ok(got.metrics['shrunk']! > 0, 'the rule shrinks columns at I_S = 1');
  });

  it('runs into a store, reports from it, and a rerun runs nothing', async () => {
    const o = options([], { repeats: 2 });
    const first = await runPto(o);
    // the ideal, 5 saturation counts, 4 table cells × 2 seeds and 15 time cells × 1 seed, less
    // the time sweep's 1 h cells of the table's policies (the same points at seed 0)
    const points = 1 + 5 + 4 * 2 + 15 - 2;
    assert.equal(first.rows.length, points);
    assert.equal(first.storedNow, points);
    assert.ok(first.rows.every((r) => r.result && r.failures === 0));
    const md = readFileSync(join(o.out, 'results.md'), 'utf8');
    const ideal = first.rows.find((r) => r.point.settings['task'] === undefined)!.result!.metrics['metric']!;
    assert.equal(ideal, 1, 'the data are labelled with the ideal model');
    assert.match(md, new RegExp(`^\\| as trained \\(${dir}\\) \\| 100\\.00 \\| full \\|`, 'm'));
    assert.match(md, /## How often the columns saturate/);
    // every number of the time sweep's 1 h column is the table's seed-0 instance
    const seed0 = first.rows.find(
      (r) =>
        r.point.settings['pto.range'] === 'dynamic' &&
        r.point.settings['pto.conductance'] === 'full' &&
        r.point.settings['time'] === '3600' &&
        r.point.settings['seed'] === 0,
    )!.result!.metrics['metric']!;
    const row = md.split('\n').find((l) => l.startsWith('| as trained | dynamic |'))!;
    assert.equal(row.split(' | ')[3], `${(100 * seed0).toFixed(2)} ± 0.00`);

    const store = await openStore(first.store);
    assert.equal((await store.rows()).filter((r) => r.result).length, points);
    await store.close();
    const report = xbar(['report', first.store]);
    assert.equal(report.status, 0, report.stderr);
    assert.match(report.stdout, new RegExp(`${points} points: ${points} done`));

    const again = await runPto(o);
    assert.equal(again.storedNow, 0);
    assert.equal(again.storedBefore, points);
    assert.equal(readFileSync(join(o.out, 'results.md'), 'utf8'), md);
  });

  it('runs with calibrated ADC ranges, without the conductance rule, closer to the ideal model than a far I_S', async () => {
    const o = options(['adc.range.kind=calibrated', ...converters]);
    const { rows } = await runPto(o);
    // I_S = 100 devices: a step of 0.8 devices, above most of this small model's column currents
    const spec = loadSpec('pcm-lammie', ['adc.range.max=100', ...converters], model);
    const matmuls = await analogInstances(model, spec)(0);
    const split = holdOut(data, CALIBRATION);
    const far = (
      await evaluate(model, subset(data, split.evaluation.slice(0, LIMIT), 'evaluation'), { matmuls })
    ).value;
    const tasks = rows.map((r) => r.point.settings['task']);
    assert.ok(!tasks.includes('pto-saturation'), 'no saturation counts');
    const instances = rows.filter((r) => r.point.settings['task'] === 'pto-instance');
    // the 1 h table without the conductance rule's cells, and the time sweep (its 1 h cells of
    // the table's policies are the table's)
    assert.ok(instances.every((r) => r.point.settings['pto.conductance'] === 'full'));
    assert.equal(instances.length, 2 + 15 - 2);
    for (const r of instances) {
      const c = r.result!.metrics['metric']!;
      assert.ok(c > far, `${JSON.stringify(r.point.settings)}: ${c} calibrated vs ${far} at I_S = 100`);
    }
    const md = readFileSync(join(o.out, 'results.md'), 'utf8');
    assert.match(md, /on pcm-lammie with --set adc\.range\.kind=calibrated program\.kind=none/);
    assert.match(md, /conductance rule .* is left out there: a calibrated ADC .* has no fixed I_S/);
    assert.doesNotMatch(md, /How often the columns saturate/);
  });

  it('refuses a --set of what the cells vary, naming the field and what to use', async () => {
    await assert.rejects(
      runPto(options(['timeS=60', 'dac.range.kind=dynamic', 'adc.bits=6'])),
      (e: Error) =>
        /--set:\n.*timeS: "timeS=60" is not allowed, each cell sets the time/.test(e.message) &&
        /dac\.range\.kind: "dac\.range\.kind=dynamic" is not allowed, each cell sets the input range .*--percentile sets K/.test(
          e.message,
        ) &&
        !e.message.includes('adc.bits'),
    );
  });

  it("refuses a point whose policies its model or the rules' parameters do not give, naming the setting", () => {
    const entry = {
      task: 'pto-instance',
      model: dir,
      limit: LIMIT,
      hw: 'pcm-lammie',
      time: 3600,
      'pto.calibration': CALIBRATION,
    };
    assert.throws(
      () => pointOf({ ...entry, 'pto.range': 'learned', 'pto.conductance': 'calibrated' }),
      (e: Error) =>
        /a learned range needs pto\.learned: true/.test(e.message) &&
        /pto\.conductance calibrated needs pto\.sigmas/.test(e.message),
    );
    assert.throws(
      () => pointOf({ ...entry, 'pto.range': 'calibrate', 'pto.conductance': 'full' }),
      /pto\.range: "calibrate" is not allowed, use dynamic, learned, calibrated, recalibrated/,
    );
    assert.throws(
      () => pointOf({ ...entry, 'pto.range': 'dynamic', 'pto.conductance': 'full', set: ['timeS=60'] }),
      /set\.timeS: "timeS=60" is not allowed, each cell sets the time/,
    );
  });
});
