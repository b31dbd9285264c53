/**
 * The ablation: "all off" is the ideal model, "only X" is the ideal spec plus X as the preset has
 * it, every row draws the same instances (seeds) on the same examples, a rerun resumes, and a
 * misspelt preset or non-ideality names the flag, the value and what is allowed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
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
  type AblationOptions,
  keptSets,
  type NonIdeality,
  nonIdealitiesOf,
  runAblation,
  specWithout,
} from '../../src/experiments/ablation.js';
import type { ExperimentRecord } from '../../src/experiments/runner.js';
import { hostArray } from '../../src/graph/ndarray.js';
import type { Model } from '../../src/models/index.js';
import { Rng } from '../../src/util/math.js';
import { maxRelErr } from '../helpers/check.js';
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

const { model } = vitMnist();
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

  it('pairs rows over the same seeds and examples, reruns as xbar eval with the listed --set, resumes', async () => {
    const data = openData(parseDataSpec(`fashion-mnist:${tinyFashionMnist(8)}`), model);
    const out = mkdtempSync(join(tmpdir(), 'xbar-ablation-'));
    const o: AblationOptions = {
      model,
      modelDir: 'tiny',
      data,
      dataSpec: 'tiny',
      hw: 'rram-clipformer',
      sets: [],
      ablate: ['adc'],
      out,
      repeats: 2,
      seed: 7,
      limit: 4,
      quiet: true,
    };
    const first = (await runAblation(o)).record;
    // full, only ADC, all but ADC
    assert.equal(Object.keys(first.cells).length, 3);
    for (const c of Object.values(first.cells))
      assert.deepEqual(
        c.instances.map((i) => i.seed),
        [7, 8],
        c.id,
      );
    const rows = first.cells['off:dac,read-noise,write-noise,weight-quantization']!;
    const sets = first.extra['sets.off:dac,read-noise,write-noise,weight-quantization'] as string[];
    const same = openData(parseDataSpec(`fashion-mnist:${tinyFashionMnist(4)}`), model);
    const again = await monteCarlo(
      model,
      same,
      analogInstances(model, loadSpec('rram-clipformer', sets, model)),
      {
        repeats: 2,
        seed: 7,
      },
    );
    assert.deepEqual(
      again.values,
      rows.instances.map((i) => i.value),
    );
    assert.equal(again.ideal, first.extra['ideal']);
    // a third instance: the first two are kept as they were (their timings too)
    const second = (await runAblation({ ...o, repeats: 3 })).record;
    const saved = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ExperimentRecord;
    for (const [id, c] of Object.entries(second.cells)) {
      assert.deepEqual(c.instances.slice(0, 2), first.cells[id]!.instances, id);
      assert.equal(saved.cells[id]!.instances.length, 3);
    }
    const md = readFileSync(join(out, 'results.md'), 'utf8');
    assert.match(md, /\| only ADC \| [\d.]+ \[/);
    assert.match(md, /not in it: bound management, programming noise, drift, output noise, weight clipping/);
  });

  it('names the flag, the value and what is allowed for a misspelt preset or non-ideality', async () => {
    const data = openData(parseDataSpec(`fashion-mnist:${tinyFashionMnist(4)}`), model);
    const o = { model, modelDir: 'tiny', data, dataSpec: 'tiny', sets: [], repeats: 1, seed: 0, limit: 2 };
    const out = mkdtempSync(join(tmpdir(), 'xbar-ablation-'));
    await assert.rejects(
      runAblation({ ...o, out, hw: 'rram-clipformr' }),
      /--hw:\n.*'rram-clipformr' is not a preset \(did you mean 'rram-clipformer'\?\); presets: ideal, rram-clipformer/,
    );
    await assert.rejects(
      runAblation({ ...o, out, hw: 'rram-clipformer', ablate: ['adc', 'adcc'] }),
      /--ablate: non-ideality: "adcc" is not allowed, use dac, adc, bound-management, read-noise, write-noise/,
    );
    await assert.rejects(
      runAblation({ ...o, out, hw: 'rram-clipformer', ablate: ['drift'] }),
      /--ablate: non-ideality: "drift" is not allowed, rram-clipformer has none; it has dac, adc, read-noise, write-noise, weight-quantization/,
    );
  });
});
