/**
 * The ClipFormer experiment as a sweep. Its points compute what the experiment computed before it
 * ran on the sweep engine, at the same seeds: a search point what `searchClipFormer` gives on the
 * held-out examples with each candidate's ranges calibrated for the K/V it writes, a cell point
 * what one instance's `measureSnr` gives on the evaluated examples. End to end, with an ADC range
 * set on data (`--set adc.range.kind=calibrated`), every point lands in OUT/results.duckdb, the
 * report is made from it, a rerun runs nothing, and on a small model, whose 64-row full-scale ADC
 * keeps little of the attention's signal, the calibrated ranges raise every cell's attention SNR
 * over the same instances; what the cells vary, a search point given a method or candidates out
 * of range, and one past the data's end, are refused by name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analogInstances, type InstanceOptions } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import { type EvalData, openData, parseDataSpec, subset } from '../../src/eval/data.js';
import type { CellRecord } from '../../src/experiments/cells.js';
import {
  cellId,
  GAMMAS,
  METHODS,
  SEARCH_GRID,
  SEARCH_SEED_OFFSET,
} from '../../src/experiments/clipformer.js';
import { calibrateAdcRanges } from '../../src/methods/adc-range.js';
import { type ClipFormerConfig, kvTransformFor, parseClipFormer } from '../../src/methods/clipformer.js';
import { parseSearch, searchClipFormer } from '../../src/methods/clipformer-search.js';
import { calibrateInputRanges } from '../../src/methods/pto.js';
import { measureSnr } from '../../src/methods/snr.js';
import {
  type ClipFormerOptions,
  clipformerParts,
  clipformerSweep,
  runClipFormer,
} from '../../src/sweep/clipformer.js';
import { openStore } from '../../src/sweep/duckdb.js';
import { EXPERIMENT_STORE } from '../../src/sweep/experiment.js';
import { parseSweep, sweepOf } from '../../src/sweep/file.js';
import { createPointRunner } from '../../src/sweep/point.js';
import { candidateName } from '../../src/sweep/tasks/clipformer-search.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { vitMnist } from '../helpers/models.js';

const { model, dir } = vitMnist(5);
const folder = tinyFashionMnist(12);
const dataSpec = `fashion-mnist:${folder}`;
const data = openData(parseDataSpec(dataSpec), model, { modelDir: dir });
const options = (sets: string[]): ClipFormerOptions => ({
  models: [{ name: 'standard', dir, model }],
  data,
  dataSpec,
  hw: 'rram-clipformer',
  sets,
  out: mkdtempSync(join(tmpdir(), 'xbar-clipformer-')),
  repeats: 1,
  seed: 0,
  limit: 4,
  calibration: 2,
  searchInstances: 1,
  searchObjective: 'accuracy',
  batch: 3,
  quiet: true,
});

/** Each instance's attention SNR, mean over blocks (dB). */
const snr = (c: CellRecord) =>
  c.instances.map((i) => {
    const b = i.extra!['snrDb'] as number[];
    return b.reduce((a, x) => a + x, 0) / b.length;
  });

/**
 * The experiment's computation before it was a sweep: the ranges set on data calibrated for the
 * K/V a transform writes (input ranges, then the ADC's through them), and the instances' options.
 */
function rangesAsBefore(sets: string[], gamma: number) {
  const spec = loadSpec('rram-clipformer', [...sets, `attention.device.program.gamma=${gamma}`], model);
  const train = () => openData(parseDataSpec(dataSpec), model, { modelDir: dir, split: 'train' });
  const options = async (c: ClipFormerConfig | null): Promise<InstanceOptions> => {
    const kv = c ? { kvTransform: kvTransformFor(c) } : {};
    const inputRanges = await calibrateInputRanges(model, train, spec);
    const adcRanges = await calibrateAdcRanges(model, train, spec, { inputRanges, ...kv });
    return { inputRanges, adcRanges, ...kv };
  };
  return { spec, options };
}

describe('the ClipFormer experiment', () => {
  it('gives at each point what the experiment computed directly at the same seed', async () => {
    const sets = ['adc.range.kind=calibrated'];
    const o = options(sets);
    const parts = clipformerParts(data, o.limit, o.calibration);
    assert.deepEqual(parts, { first: 10, calibration: 2, examples: 4 });
    const design = { ...o, models: [{ name: 'standard' as const, dir }], parts };
    const choice = { alpha: 3, beta: 0.25 };
    const sweep = clipformerSweep(design, () => choice);
    // the searches, the ideal model, and model × γ × method × seed
    assert.equal(sweep.points.length, GAMMAS.length + 1 + GAMMAS.length * METHODS.length);
    const run = createPointRunner();
    const gamma = 5;
    const at = (task: string | undefined, alpha?: number) =>
      sweep.points.find(
        (p) =>
          p.settings['task'] === task &&
          p.settings['set.attention.device.program.gamma'] === gamma &&
          p.settings['clipformer.alpha'] === alpha,
      )!;
    const before = rangesAsBefore(sets, gamma);

    // the search on the held-out examples, seeds from seed + 10000
    const calibration: EvalData = subset(data, [10, 11], 'calibration part');
    const searched = await run(at('clipformer-search'));
    const direct = await searchClipFormer(
      model,
      calibration,
      before.spec,
      parseSearch({
        ...SEARCH_GRID,
        instances: 1,
        objective: 'accuracy',
        seed: o.seed + SEARCH_SEED_OFFSET,
      }),
      { batch: 3, instanceOptions: (c) => before.options(c as ClipFormerConfig | null) },
    );
    assert.equal(direct.candidates.length, 1 + SEARCH_GRID.alphas.length * SEARCH_GRID.betas.length);
    for (const c of direct.candidates)
      assert.equal(searched.metrics[`metric[${candidateName(c)}]`], c.metric, candidateName(c));
    assert.equal(searched.labels?.['chosen'], direct.global ? candidateName(direct.global) : 'off');
    assert.equal(searched.metrics['off'], direct.global ? 0 : 1);

    // one instance of a cell with the transform, on the first examples
    const cell = await run(at(undefined, choice.alpha));
    const evaluated = subset(data, [0, 1, 2, 3], 'evaluation part');
    const c = parseClipFormer(choice);
    const matmuls = await analogInstances(model, before.spec, await before.options(c))(o.seed);
    const r = await measureSnr(model, evaluated, matmuls, { batch: 3 });
    assert.equal(cell.metrics['metric'], r.value);
    for (const b of r.blocks) assert.equal(cell.metrics[`snr_db.${b.block}`], b.snrDb, b.block);
    assert.equal(cell.metrics['examples'], 4);
  });

  it('runs into OUT/results.duckdb and reports from it; a rerun runs nothing; calibrated ranges raise every cell’s SNR', async () => {
    const full = options([]);
    const calibrated = options(['adc.range.kind=calibrated']);
    const runs = [await runClipFormer(full), await runClipFormer(calibrated)];
    for (const run of runs) {
      assert.equal(run.store, join(run.out, EXPERIMENT_STORE));
      assert.deepEqual([run.storedNow, run.storedBefore], [run.rows.length, 0]);
      assert.deepEqual(
        [...run.cells.keys()],
        [...GAMMAS.flatMap((g) => METHODS.map((m) => cellId('standard', g, m)))],
      );
    }
    // the store's sweep is a sweep file that xbar sweep expands to the same points
    const store = await openStore(runs[1]!.store);
    const stored = await store.sweep();
    const rows = await store.rows();
    await store.close();
    assert.deepEqual(
      parseSweep(stored.source, 'stored').points.map((p) => p.id),
      rows.map((r) => r.point.id),
    );
    assert.ok(rows.every((r) => r.result && r.failures === 0));

    // the cells, rebuilt from each store by the rerun (which runs nothing)
    const cellsOf = async (o: ClipFormerOptions) => {
      const again = await runClipFormer(o);
      assert.equal(again.storedNow, 0, 'a rerun runs nothing');
      assert.equal(again.storedBefore, again.rows.length);
      return readFileSync(join(o.out, 'results.md'), 'utf8');
    };
    const md = await cellsOf(calibrated);
    assert.match(md, /hardware rram-clipformer with --set adc\.range\.kind=calibrated/);
    assert.match(
      md,
      /calibrated per model and K\/V transform .* on the first 2 examples of fashion-mnist train/,
    );
    assert.equal(md.match(/^\| standard \| \d/gm)?.length, GAMMAS.length + GAMMAS.length * METHODS.length);
    assert.doesNotMatch(await cellsOf(full), /calibrated per model/);
    for (const name of ['clipformer.vl.json', 'clipformer.svg', 'clipformer.png'])
      assert.ok(readFileSync(join(calibrated.out, name)).length > 0, name);

    // every cell's SNR, calibrated above full scale, instance by instance
    const [without, withCal] = runs.map((r) => r.cells);
    for (const [id, c] of withCal!) {
      const w = snr(without!.get(id)!);
      for (const [i, v] of snr(c).entries()) assert.ok(v > w[i]!, `${id} #${i}: ${v} dB vs ${w[i]} dB`);
    }
  });

  it('refuses a --set of γ, and a search point given a method, a bad α or examples past the end, naming them', async () => {
    await assert.rejects(
      runClipFormer(options(['attention.device.program.gamma=3'])),
      /--set:\n.*attention\.device\.program\.gamma: "attention\.device\.program\.gamma=3" is not allowed, each cell sets γ itself/,
    );
    // a search point as the experiment makes one, each case changing a field
    const search = (fields: Record<string, unknown>) =>
      sweepOf(
        {
          task: 'clipformer-search',
          model: dir,
          data: dataSpec,
          hw: 'rram-clipformer',
          limit: 2,
          'search.first': 10,
          'search.alphas': '1,2',
          'search.betas': '1,0.25',
          'search.instances': 1,
          'search.objective': 'accuracy',
          ...fields,
        },
        'search.yaml',
      );
    assert.throws(
      () => search({ clipformer: '2,0.25' }),
      /method clipformer: a search point tries the transforms itself; leave method out/,
    );
    assert.throws(
      () => search({ 'search.alphas': '1,0.5' }),
      /search\.alphas: "1,0\.5" is not allowed, use α candidates, comma-separated, each ≥ 1/,
    );
    // examples past the data's end: named before anything is computed
    const [beyond] = search({ 'search.first': 11, 'search.alphas': 2 }).points;
    assert.equal(beyond!.settings['search.alphas'], '2');
    await assert.rejects(
      createPointRunner()(beyond!),
      /search\.first: 11 is not allowed, use 0\.\.10: fashion-mnist test \(12\) has 12 examples and the search takes 2/,
    );
  });
});
