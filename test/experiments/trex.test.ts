/** The TReX experiment on the common runner: a finished results.json renders alone; other settings are refused. */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { EvalData } from '../../src/eval/data.js';
import { trexExperiment } from '../../src/experiments/trex.js';
import { BRIEF_DEFAULTS } from '../../src/methods/trex/search.js';
import { loadModel } from '../../src/models/index.js';
import { ROOT } from '../helpers/models.js';

/** Data that names itself as the committed run's did; reading an example fails the test. */
const named = (name: string, size: number): EvalData => ({
  name,
  size,
  metrics: ['accuracy'],
  regression: false,
  targets: new Float64Array(size),
  inputs: () => assert.fail(`${name} was read`),
  inputsAt: () => assert.fail(`${name} was read`),
});

describe('TReX experiment', () => {
  const committed = join(ROOT, 'results/trex-bert');
  const run = (out: string, hwLimit: number) =>
    trexExperiment({
      model: loadModel(join(ROOT, 'models/bert-sst2')),
      modelDir: 'models/bert-sst2',
      data: {
        eval: named('glue-sst-2 dev (872)', 872),
        train: named('glue-sst-2 train (67349) [0, 6734)', 6734),
        heldOut: named('glue-sst-2 train (67349) [66349, 67349)', 1000),
      },
      hardware: ['fefet-trex', 'hybrid-trex'],
      brief: { ...BRIEF_DEFAULTS },
      finetune: null,
      repeats: 2,
      hwLimit,
      seed: 0,
      seqLen: 64,
      out,
      log: () => {},
    });

  it('renders the committed results.md from results.json alone, computing nothing', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'xbar-trex-')), 'trex-bert');
    cpSync(committed, out, { recursive: true });
    await run(out, 200);
    for (const f of ['results.md', 'results.json'])
      assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(committed, f), 'utf8'), f);
  });

  it('refuses results of other settings', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'xbar-trex-')), 'trex-bert');
    cpSync(committed, out, { recursive: true });
    await assert.rejects(run(out, 100), /holds results of other settings.*"hwLimit":200/);
  });
});
