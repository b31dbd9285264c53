import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { runClipFormerExperiment } from '../../src/experiments/clipformer.js';
import { runClipFormer } from '../../src/sweep/clipformer.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { vitMnist } from '../helpers/models.js';

const { model, dir } = vitMnist(5);
const folder = tinyFashionMnist(12);
const spec = `fashion-mnist:${folder}`;
const data = openData(parseDataSpec(spec), model, { modelDir: dir });
for (const sets of [[], ['adc.range.kind=calibrated']])
  it(`old and new give the same results.md ${sets}`, async () => {
    const common = {
      data,
      dataSpec: spec,
      hw: 'rram-clipformer',
      sets,
      repeats: 2,
      seed: 0,
      limit: 4,
      calibration: 2,
      searchInstances: 1,
      searchObjective: 'accuracy' as const,
      quiet: true,
      batch: 3,
    };
    const a = mkdtempSync(join(tmpdir(), 'old-'));
    const b = mkdtempSync(join(tmpdir(), 'new-'));
    await runClipFormerExperiment({
      ...common,
      models: [{ name: 'standard', dir, model }],
      out: a,
      calibrationData: () => openData(parseDataSpec(spec), model, { modelDir: dir, split: 'train' }),
    });
    await runClipFormer({ ...common, models: [{ name: 'standard', dir, model }], out: b });
    const ra = readFileSync(join(a, 'results.md'), 'utf8');
    const rb = readFileSync(join(b, 'results.md'), 'utf8');
    console.log(ra);
    console.log(rb);
    assert.equal(rb, ra);
    assert.equal(
      readFileSync(join(b, 'clipformer.vl.json'), 'utf8'),
      readFileSync(join(a, 'clipformer.vl.json'), 'utf8'),
    );
  });
