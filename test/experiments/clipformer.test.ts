/**
 * The ClipFormer experiment with an ADC range set on data: `--set adc.range.kind=calibrated` runs
 * (every cell's instances and the search's candidates get ranges calibrated for the K/V they
 * write), and on a small model, whose 64-row full-scale ADC keeps little of the attention's
 * signal, the calibrated ranges raise every cell's attention SNR over the same instances; what
 * the cells vary, and calibrated ranges without calibration data, are refused by name.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import {
  type ClipFormerExperimentOptions,
  runClipFormerExperiment,
} from '../../src/experiments/clipformer.js';
import type { CellRecord } from '../../src/experiments/runner.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { vitMnist } from '../helpers/models.js';

const { model, dir } = vitMnist(5);
const folder = tinyFashionMnist(12);
const data = openData(parseDataSpec(`fashion-mnist:${folder}`), model, { modelDir: dir });
const options = (sets: string[]): ClipFormerExperimentOptions => ({
  models: [{ name: 'standard', dir, model }],
  data,
  dataSpec: 'tiny',
  hw: 'rram-clipformer',
  sets,
  calibrationData: () => openData(parseDataSpec(`fashion-mnist:${folder}`), model, { split: 'train' }),
  out: mkdtempSync(join(tmpdir(), 'xbar-clipformer-')),
  repeats: 1,
  seed: 0,
  limit: 4,
  calibration: 2,
  searchInstances: 1,
  searchObjective: 'accuracy',
  quiet: true,
});

/** Each instance's attention SNR, mean over blocks (dB). */
const snr = (c: CellRecord) =>
  c.instances.map((i) => {
    const b = i.extra!['snrDb'] as number[];
    return b.reduce((a, x) => a + x, 0) / b.length;
  });

describe('the ClipFormer experiment', () => {
  it('runs with calibrated ADC ranges, which raise every cell’s attention SNR over the full scale', async () => {
    const full = (await runClipFormerExperiment(options([]))).record;
    const o = options(['adc.range.kind=calibrated']);
    const calibrated = (await runClipFormerExperiment(o)).record;
    assert.deepEqual(Object.keys(calibrated.cells), Object.keys(full.cells));
    assert.equal(Object.keys(full.cells).length, 9);
    for (const [id, c] of Object.entries(calibrated.cells)) {
      const with_ = snr(c);
      const without = snr(full.cells[id]!);
      for (const [i, v] of with_.entries())
        assert.ok(v > without[i]!, `${id} #${i}: ${v} dB vs ${without[i]} dB`);
    }
    assert.deepEqual(calibrated.settings['sets'], ['adc.range.kind=calibrated']);
    assert.equal(full.settings['sets'], undefined, 'settings without --set stay as they were');
    const md = readFileSync(join(o.out, 'results.md'), 'utf8');
    assert.match(md, /hardware rram-clipformer with --set adc\.range\.kind=calibrated/);
    assert.match(
      md,
      /calibrated per model and K\/V transform .* on the first 2 examples of fashion-mnist train/,
    );
  });

  it('refuses a --set of γ, and calibrated ranges without calibration data, naming them', async () => {
    await assert.rejects(
      runClipFormerExperiment(options(['attention.device.program.gamma=3'])),
      /--set:\n.*attention\.device\.program\.gamma: "attention\.device\.program\.gamma=3" is not allowed, each cell sets γ itself/,
    );
    const { calibrationData: _, ...without } = options(['adc.range.kind=calibrated']);
    await assert.rejects(
      runClipFormerExperiment(without),
      /--hw rram-clipformer: its calibrated ranges need calibration data, which this run was not given/,
    );
  });
});
