/**
 * The ablation: "all off" is the ideal model, "only X" is the ideal spec plus X as the preset has
 * it; run as a sweep, every row draws the same instances (seeds) on the same examples, each point
 * is what `xbar eval` measures with the row's --set, a run killed with `kill -9` resumes storing
 * each point once with the numbers of an uninterrupted run, and a misspelt preset or non-ideality
 * names the flag, the value and what is allowed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { AnalogModel } from '../../src/analog/analog-model.js';
import { analogInstances } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import type { ResolvedSpec } from '../../src/analog/resolve.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { monteCarlo } from '../../src/eval/montecarlo.js';
import { Predictor } from '../../src/eval/predict.js';
import {
  ablationPlan,
  keptSets,
  type NonIdeality,
  nonIdealitiesOf,
  specWithout,
} from '../../src/experiments/ablation.js';
import { hostArray } from '../../src/graph/ndarray.js';
import type { Model } from '../../src/models/index.js';
import { type AblationOptions, runAblation } from '../../src/sweep/ablation.js';
import { openStore } from '../../src/sweep/duckdb.js';
import { parseSweep, sweepOf } from '../../src/sweep/file.js';
import { type SweepStatus, statusFile } from '../../src/sweep/progress.js';
import { hardwareSetsOf } from '../../src/sweep/settings.js';
import { Rng } from '../../src/util/math.js';
import { maxRelErr } from '../helpers/check.js';
import { XBAR, xbarAsync } from '../helpers/cli.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { vitMnist } from '../helpers/models.js';

const PRESETS = ['rram-clipformer', 'fefet-trex', 'hybrid-trex', 'pcm-aihwkit', 'pcm-lammie'];

/** The crossbar field each non-ideality lives in, and the crossbars (static, K/V) it acts on. */
const FIELD: Record<NonIdeality, { key: string; static: boolean; kv: boolean }> = {
  dac: { key: 'dac', static: true, kv: true },
  adc: { key: 'adc', static: true, kv: true },
  'bound-management': { key: 'adc', static: true, kv: true },
  'read-noise': { key: 'readNoise', static: true, kv: true },
  'write-noise': { key: 'program', static: false, kv: true },
  'programming-noise': { key: 'program', static: true, kv: false },
  drift: { key: 'drift', static: true, kv: true },
  'output-noise': { key: 'outputNoise', static: true, kv: true },
  'weight-quantization': { key: 'cells', static: true, kv: true },
  'weight-clip': { key: 'mapping', static: true, kv: true },
};

const { model, dir } = vitMnist();
const layer = model.linearLayers()[0]!.name;
const pixels = hostArray(
  'float32',
  [2, 1, 28, 28],
  new Rng(5).fillNormal(new Float32Array(2 * 28 * 28), 0, 1),
);

async function logits(m: Model, hw: ResolvedSpec | null, seed = 1) {
  const matmuls = hw ? new AnalogModel(hw, seed).matmuls() : undefined;
  return (await new Predictor(m, matmuls ? { matmuls } : {}).logits({ pixel_values: pixels }))
    .data as Float32Array;
}

const crossbars = (hw: ResolvedSpec) => ({ static: hw.crossbar(layer), kv: hw.attention });

describe('ablation', () => {
  it('with every non-ideality off, every preset computes the ideal model’s logits', async () => {
    const exact = await logits(model, null);
    for (const p of PRESETS) {
      const present = nonIdealitiesOf(loadSpec(p));
      assert.ok(present.length >= 3, `${p}: ${present}`);
      const off = specWithout(p, [], new Set(present), model);
      assert.deepEqual(nonIdealitiesOf(off), []);
      assert.ok(maxRelErr(await logits(model, off), exact) <= 1e-5, p);
    }
  });

  it('"only X" is the all-off spec with X as the full preset has it, on the crossbars X acts on', () => {
    for (const p of PRESETS) {
      const full = loadSpec(p);
      const present = nonIdealitiesOf(full);
      const allOff = crossbars(specWithout(p, [], new Set(present)));
      for (const x of present) {
        const keep = new Set<NonIdeality>(x === 'bound-management' ? [x, 'adc'] : [x]);
        const only = specWithout(p, [], new Set(present.filter((n) => !keep.has(n))));
        assert.deepEqual(
          nonIdealitiesOf(only),
          present.filter((n) => keep.has(n)),
          `${p}: only ${x}`,
        );
        const f = FIELD[x];
        for (const side of ['static', 'kv'] as const) {
          const [got, off, want] = [crossbars(only)[side], allOff[side], crossbars(full)[side]];
          if (!got || !off || !want) continue;
          for (const k of Object.keys(got) as (keyof typeof got)[]) {
            // only the ADC: as the preset has it, less the bound management
            const adcAlone: boolean = x === 'adc' && want.adc.kind === 'uniform';
            const mine: unknown = adcAlone ? { ...want.adc, boundManagement: { kind: 'none' } } : want[k];
            const expected: unknown = k === f.key && f[side] ? mine : off[k];
            assert.deepEqual(got[k], expected, `${p}: only ${x}, ${side} ${k}`);
          }
        }
      }
    }
  });

  it("a row that switches the ADC off drops the user's sets of the ADC's other fields, and keeps them elsewhere", () => {
    const sets = ['adc.bits=8', 'readNoise.sigma=0.1'];
    assert.throws(() => loadSpec('rram-clipformer', [...sets, 'adc.kind=ideal']), /bits|adc/);
    const noAdc = specWithout('rram-clipformer', sets, new Set<NonIdeality>(['adc']));
    assert.equal(noAdc.spec.adc.kind, 'ideal');
    assert.equal(noAdc.spec.readNoise.kind === 'relative' && noAdc.spec.readNoise.sigma, 0.1);
    const noRead = specWithout('rram-clipformer', sets, new Set<NonIdeality>(['read-noise']));
    assert.equal(noRead.spec.adc.kind === 'uniform' && noRead.spec.adc.bits, 8);
    assert.deepEqual(keptSets(sets, ['adc.kind=ideal']), ['readNoise.sigma=0.1']);
    assert.deepEqual(keptSets(sets, ['readNoise.kind=none']), ['adc.bits=8']);
  });

  it('only the ADC of rram-clipformer computes what the ideal spec with that ADC and tiles does', async () => {
    const only = specWithout(
      'rram-clipformer',
      [],
      new Set<NonIdeality>(['dac', 'read-noise', 'write-noise', 'weight-quantization']),
      model,
    );
    const byHand = loadSpec(
      'ideal',
      [
        'technology=rram',
        'tile={rows: 64, cols: 64, split: fixed}',
        'mapping={gMinUS: 0.1, gMaxUS: 10}',
        'adc={kind: uniform, bits: 6, range: {kind: full}}',
        'attention={kind: crossbar}',
      ],
      model,
    );
    const a = await logits(model, only);
    assert.deepEqual(a, await logits(model, byHand));
    assert.ok(maxRelErr(a, await logits(model, null)) > 1e-3, 'the ADC changes the logits');
  });

  // the ablation of two of rram-clipformer's non-idealities: full, only and all but each, 2 seeds
  const fashion = tinyFashionMnist(8);
  const dataSpec = `fashion-mnist:${fashion}`;
  const base: AblationOptions = {
    model,
    modelDir: dir,
    data: openData(parseDataSpec(dataSpec), model),
    dataSpec,
    hw: 'rram-clipformer',
    sets: [],
    ablate: ['adc', 'read-noise'],
    out: '',
    repeats: 2,
    seed: 7,
    limit: 4,
    batch: 4,
    quiet: true,
  };
  const POINTS = 1 + 5 * 2;
  /** The store's results by point id (provenance aside), and how many rows and ids it holds. */
  const stored = async (out: string) => {
    const s = await openStore(join(out, 'results.duckdb'));
    const rows = await s.rows();
    const [count] = (await s.query!('SELECT count(*), count(DISTINCT id) FROM results')).rows;
    const { source } = await s.sweep();
    await s.close();
    return {
      rows,
      count,
      source,
      results: Object.fromEntries(rows.map((r) => [r.point.id, [r.result?.metrics, r.result?.labels]])),
    };
  };
  const uninterrupted = mkdtempSync(join(tmpdir(), 'xbar-ablation-'));

  it('runs the rows as sweep points paired by seed, each what xbar eval measures with the row’s --set', async () => {
    const run = await runAblation({ ...base, out: uninterrupted });
    assert.equal(run.storedNow, POINTS);
    const { rows, count, source } = await stored(uninterrupted);
    assert.deepEqual(count, [POINTS, POINTS]);
    // the store's sweep is a sweep file that xbar sweep expands to the same points
    assert.deepEqual(
      parseSweep(source, 'ablation.yaml').points.map((p) => p.id),
      rows.map((r) => r.point.id),
    );
    assert.doesNotMatch(source, /[&*]a\d/, 'no YAML anchors');
    // the ideal model first (no hardware), then each row × seed, the same seeds in every row
    assert.equal(rows[0]!.point.settings['hw'], undefined);
    assert.deepEqual(
      rows.slice(1).map((r) => r.point.settings['seed']),
      Array(5).fill([7, 8]).flat(),
    );
    const ideal = rows[0]!.result!.metrics['metric'];
    const onlyAdc = run.plan.rows.find((r) => r.label === 'only ADC')!;
    assert.deepEqual(onlyAdc.sets, [
      'dac.kind=ideal',
      'readNoise.kind=none',
      'attention.device.program.kind=none',
      'cells.kind=analog',
    ]);
    const points = rows.filter(
      (r) =>
        r.point.settings['set.dac.kind'] === 'ideal' && r.point.settings['set.readNoise.kind'] === 'none',
    );
    assert.equal(points.length, 2);
    // xbar eval --hw rram-clipformer --set … --repeats 2 --seed 7 on the same examples
    const again = await monteCarlo(
      model,
      openData(parseDataSpec(`fashion-mnist:${tinyFashionMnist(4)}`), model),
      analogInstances(model, loadSpec('rram-clipformer', onlyAdc.sets, model)),
      { repeats: 2, seed: 7, batch: 4 },
    );
    assert.deepEqual(
      again.values,
      points.map((r) => r.result!.metrics['metric']),
    );
    assert.equal(again.ideal, ideal);
    const md = readFileSync(join(uninterrupted, 'results.md'), 'utf8');
    assert.match(md, /2 instances per row, seeds 7\.\.8, the same in every row/);
    assert.match(md, new RegExp(`\\| ideal \\(floating point\\) \\| ${(100 * ideal!).toFixed(2)} \\|`));
    assert.match(md, /\| only ADC \| [\d.]+ \[/);
    assert.match(md, /\| all but read noise \| `readNoise\.kind=none` \|/);
    assert.match(md, /not in it: bound management, programming noise, drift, output noise, weight clipping/);
    assert.ok(existsSync(join(uninterrupted, 'ablation.svg')));
  });

  it('resumes a run killed with kill -9, storing each point once with the numbers of an uninterrupted run', async () => {
    const out = mkdtempSync(join(tmpdir(), 'xbar-ablation-'));
    const args = [
      ...['experiment', 'ablation', '--model', dir, '--data', dataSpec, '--ablate', 'adc,read-noise'],
      ...['--repeats', '2', '--seed', '7', '--limit', '4', '--batch', '4', '--out', out, '--quiet'],
    ];
    const child = spawn(process.execPath, [XBAR, ...args], { stdio: 'ignore' });
    const file = statusFile(join(out, 'results.duckdb'));
    const status = () => (existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as SweepStatus) : null);
    for (let t = 0; t < 1200 && (status()?.done ?? 0) < 2; t++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    const before = status()!;
    assert.ok(before.done >= 2 && before.done < POINTS, `killed mid-run: ${before.done} of ${POINTS} stored`);
    assert.equal(before.state, 'running');

    const rerun = await xbarAsync(args);
    assert.equal(rerun.status, 0, rerun.stderr);
    const [, now, earlier] = /\((\d+) points stored now, (\d+) before\)/.exec(rerun.stdout)!;
    assert.ok(Number(earlier) >= before.done, 'what was stored before the kill is kept');
    assert.equal(Number(now) + Number(earlier), POINTS);
    const got = await stored(out);
    assert.deepEqual(got.count, [POINTS, POINTS], 'every point stored exactly once');
    assert.deepEqual(
      got.results,
      (await stored(uninterrupted)).results,
      'the numbers of the uninterrupted run',
    );
    assert.equal(
      readFileSync(join(out, 'results.md'), 'utf8'),
      readFileSync(join(uninterrupted, 'results.md'), 'utf8'),
    );
    // a rerun of a finished ablation runs nothing and writes the same report
    const third = await xbarAsync(args);
    assert.match(third.stdout, /\(0 points stored now, 11 before\)/);
  });

  it('names the flag, the value and what is allowed for a misspelt preset or non-ideality', () => {
    assert.throws(
      () => ablationPlan({ hw: 'rram-clipformr', sets: [] }),
      /--hw:\n.*'rram-clipformr' is not a preset \(did you mean 'rram-clipformer'\?\); presets: ideal, rram-clipformer/,
    );
    assert.throws(
      () => ablationPlan({ hw: 'rram-clipformer', sets: [], ablate: ['adc', 'adcc'] }),
      /--ablate: non-ideality: "adcc" is not allowed, use dac, adc, bound-management, read-noise, write-noise/,
    );
    assert.throws(
      () => ablationPlan({ hw: 'rram-clipformer', sets: [], ablate: ['drift'] }),
      /--ablate: non-ideality: "drift" is not allowed, rram-clipformer has none; it has dac, adc, read-noise, write-noise, weight-quantization/,
    );
  });

  it('gives every preset’s rows as sweep points whose specs are the rows’ specs', () => {
    for (const p of PRESETS) {
      const plan = ablationPlan({ hw: p, sets: ['timeS=3600'], model });
      for (const row of plan.rows) {
        const sets = hardwareSetsOf(
          sweepOf(
            { model: dir, data: dataSpec, hw: p, ...(row.sets.length ? { set: row.sets } : {}) },
            'test',
          ).points[0]!.settings,
        );
        assert.deepEqual(
          loadSpec(p, sets, model).spec,
          specWithout(p, ['timeS=3600'], row.off, model).spec,
          `${p}: ${row.label}`,
        );
      }
    }
  });
});
