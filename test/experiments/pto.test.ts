/**
 * The post-training experiment with an ADC range set on data: `--set adc.range.kind=calibrated`
 * runs every input-range cell with ADC ranges calibrated per instance, leaves out the conductance
 * rule (which needs a fixed I_S) and says so; on a small model without noise, whose converters
 * then make the difference, the calibrated ranges agree with the ideal model better in every cell
 * than a fixed I_S far above the model's column currents; what the cells vary is refused by name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { analogInstances } from '../../src/analog/instances.js';
import { loadSpec } from '../../src/analog/presets.js';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { evaluate } from '../../src/eval/evaluate.js';
import { type PtoExperimentOptions, runPtoExperiment } from '../../src/experiments/pto.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { vitMnist } from '../helpers/models.js';

const { model, dir } = vitMnist(5);
const opened = openData(parseDataSpec(`fashion-mnist:${tinyFashionMnist(16)}`), model, { modelDir: dir });
// labelled with the ideal model's own predictions: accuracy is the agreement with the ideal model
const data = { ...opened, targets: (await evaluate(model, opened)).predictions };

// the converters alone (the drift compensation that reads through the periphery needs a fixed ADC
// range: the noise-free one, which without drift is 1)
const converters = [
  'program.kind=none',
  'outputNoise.kind=none',
  'drift.kind=none',
  'driftCompensation=global-ideal',
];

const options = (sets: string[]): PtoExperimentOptions => ({
  models: [{ name: 'as trained', dir, model, data }],
  dataSpec: 'tiny',
  hw: 'pcm-lammie',
  sets: [...sets, ...converters],
  out: mkdtempSync(join(tmpdir(), 'xbar-pto-')),
  repeats: 1,
  timeRepeats: 1,
  seed: 0,
  calibration: 2,
  percentile: 99.99,
  sigmas: 3,
  current: 'signed',
  limit: 14,
});

describe('the post-training experiment', () => {
  it('runs with calibrated ADC ranges, without the conductance rule, closer to the ideal model than a far I_S', async () => {
    const o = options(['adc.range.kind=calibrated']);
    const calibrated = (await runPtoExperiment(o)).record;
    assert.equal(calibrated.extra['ideal.as trained'], 1);
    // I_S = 100 devices: a step of 0.8 devices, above most of this small model's column currents
    const spec = loadSpec('pcm-lammie', ['adc.range.max=100', ...converters], model);
    const matmuls = await analogInstances(model, spec)(0);
    const far = (await evaluate(model, data, { matmuls })).value;
    const ids = Object.keys(calibrated.cells);
    // the 1 h table without the conductance rule's cells, and the time sweep
    assert.deepEqual(
      ids.filter((id) => id.endsWith('.t3600')),
      ['as trained.dynamic.t3600', 'as trained.calibrated.t3600'],
    );
    assert.equal(ids.length, 2 + 15);
    assert.ok(!Object.keys(calibrated.extra).some((k) => k.startsWith('saturation.')));
    for (const id of ids) {
      const c = calibrated.cells[id]!.mean;
      assert.ok(c > far, `${id}: ${c} calibrated vs ${far} at I_S = 100`);
    }
    const md = readFileSync(join(o.out, 'results.md'), 'utf8');
    assert.match(md, /on pcm-lammie with --set adc\.range\.kind=calibrated program\.kind=none/);
    assert.match(md, /conductance rule .* is left out there: a calibrated ADC .* has no fixed I_S/);
    assert.doesNotMatch(md, /How often the columns saturate/);
  });

  it('refuses a --set of what the cells vary, naming the field and what to use', async () => {
    await assert.rejects(
      runPtoExperiment(options(['timeS=60', 'dac.range.kind=dynamic', 'adc.bits=6'])),
      (e: Error) =>
        /--set:\n.*timeS: "timeS=60" is not allowed, each cell sets the time/.test(e.message) &&
        /dac\.range\.kind: "dac\.range\.kind=dynamic" is not allowed, each cell sets the input range .*--percentile sets K/.test(
          e.message,
        ) &&
        !e.message.includes('adc.bits'),
    );
  });
});
