/** Evaluation end to end: data specs, batching, metrics, and the CLI commands a user runs. */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { decide, evaluate } from '../../src/eval/evaluate.js';
import { predictLogits } from '../../src/eval/predict.js';
import { readGlue } from '../../src/io/glue.js';
import { loadTokenizer } from '../../src/io/tokenizer.js';
import { bertSst2, FIXTURES, ROOT, vitMnist } from '../helpers/models.js';

const XBAR = join(ROOT, 'bin/xbar.js');

describe('evaluate', () => {
  it('scores MNIST in batches exactly as one batch of logits does', async () => {
    const { dir, model } = vitMnist();
    const data = openData(parseDataSpec(`mnist:${join(FIXTURES, 'mnist')}`), model, {
      modelDir: dir,
      limit: 50,
    });
    const r = await evaluate(model, data, { batch: 7 });
    const all = decide(await predictLogits(model, data.inputs(0, 50)), false);
    assert.deepEqual(r.predictions, all);
    const acc = all.reduce((s, p, i) => s + +(p === data.targets[i]), 0) / 50;
    assert.equal(r.value, acc);
    assert.equal(r.metric, 'accuracy');
    assert.equal(r.n, 50);
  });

  it("tokenizes GLUE sentences with the model folder's vocabulary", async () => {
    const { dir, model } = bertSst2();
    const data = openData(parseDataSpec(`glue-sst2:${join(FIXTURES, 'glue/SST-2')}`), model, {
      modelDir: dir,
      limit: 20,
    });
    const x = data.inputs(0, 4);
    const [b, t] = x.input_ids!.shape as [number, number];
    assert.equal(b, 4);
    assert.equal(t % 16, 0);
    assert.equal((x.input_ids!.data as Int32Array)[0], 101); // [CLS]
    // each row is the folder's tokenizer's encoding of its sentence, padded
    const tokenizer = loadTokenizer(dir);
    const rows = readGlue('SST-2', join(FIXTURES, 'glue/SST-2/dev.tsv')).slice(0, 4);
    for (const [i, row] of rows.entries()) {
      const want = tokenizer.encode(row.textA).inputIds;
      const got = Array.from((x.input_ids!.data as Int32Array).subarray(i * t, (i + 1) * t));
      assert.deepEqual(got, [...want, ...Array(t - want.length).fill(tokenizer.padId)], `sentence ${i}`);
    }
    const r = await evaluate(model, data, { batch: 8 });
    assert.equal(r.n, 20);
    assert.ok(r.value >= 0 && r.value <= 1);
  });

  it('rejects data that does not fit the model', () => {
    const { dir, model } = vitMnist();
    assert.throws(
      () => parseDataSpec('cifar:/x'),
      /expected KIND:PATH with KIND one of fashion-mnist, mnist, imagefolder, glue-cola/,
    );
    assert.throws(
      () => openData(parseDataSpec('glue-sst2:/x'), model, { modelDir: dir }),
      /--data glue-sst2: the vit model reads image data \(fashion-mnist, mnist, imagefolder\)/,
    );
    const { model: bert, dir: bdir } = bertSst2();
    assert.throws(
      () => openData(parseDataSpec(`glue-stsb:${join(FIXTURES, 'glue/STS-B')}`), bert, { modelDir: bdir }),
      /STS-B has a regression score, the model predicts 2 classes/,
    );
  });
});

describe('the xbar command', () => {
  it('eval --json prints metric, value and n', async () => {
    const { dir, model } = vitMnist();
    const args = [
      XBAR,
      'eval',
      '--model',
      dir,
      '--data',
      `mnist:${join(FIXTURES, 'mnist')}`,
      '--limit',
      '30',
      '--json',
    ];
    const j = JSON.parse(execFileSync(process.execPath, args, { encoding: 'utf8' }));
    assert.equal(j.metric, 'accuracy');
    assert.equal(j.n, 30);
    // the value evaluate gives for the same model and data
    const data = openData(parseDataSpec(`mnist:${join(FIXTURES, 'mnist')}`), model, {
      modelDir: dir,
      limit: 30,
    });
    assert.equal(j.value, (await evaluate(model, data)).value);
  });

  it('predict writes the logits PyTorch computed for a fixture', () => {
    const fixture = join(ROOT, 'test/fixtures/models/deit');
    const ref = JSON.parse(readFileSync(join(fixture, 'reference.json'), 'utf8'));
    const tmp = mkdtempSync(join(tmpdir(), 'xbar-predict-'));
    writeFileSync(join(tmp, 'in.json'), JSON.stringify({ pixel_values: ref.pixel_values }));
    const out = join(tmp, 'out.json');
    execFileSync(process.execPath, [
      XBAR,
      'predict',
      '--model',
      fixture,
      '--inputs',
      join(tmp, 'in.json'),
      '--output',
      out,
    ]);
    const got = (JSON.parse(readFileSync(out, 'utf8')).logits as number[][]).flat();
    const want = (ref.logits as number[][]).flat();
    const scale = Math.max(...want.map(Math.abs));
    for (const [i, v] of got.entries())
      assert.ok(Math.abs(v - want[i]!) <= 1e-4 * scale, `${v} vs ${want[i]}`);
  });

  it('bad input exits non-zero with a message naming the file and field', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'xbar-bad-'));
    writeFileSync(join(tmp, 'in.json'), JSON.stringify({ pixel_values: [[1, 2], [3]] }));
    const fixture = join(ROOT, 'test/fixtures/models/deit');
    const r = spawnSync(
      process.execPath,
      [XBAR, 'predict', '--model', fixture, '--inputs', join(tmp, 'in.json')],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^xbar: .*in\.json: pixel_values\[1\]: expected an array of 2/);
    const r2 = spawnSync(process.execPath, [XBAR, 'eval', '--model', tmp, '--data', 'mnist:/nowhere'], {
      encoding: 'utf8',
    });
    assert.equal(r2.status, 1);
    assert.match(r2.stderr, /config\.json:\n {2}✖ not found/);
  });
});
