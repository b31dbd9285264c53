/**
 * Bad input a user can give, each answered with an error that names the file or flag, the field,
 * the value and what is allowed (and never a hang or a raw system error).
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PNG } from 'pngjs';
import { openData, parseDataSpec } from '../../src/eval/data.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { loadModel } from '../../src/models/index.js';
import { whyNot, writeFileAtomic } from '../../src/util/files.js';
import { xbarAsync } from '../helpers/cli.js';
import { ROOT, vitMnist } from '../helpers/models.js';

const tmp = (what: string) => mkdtempSync(join(tmpdir(), `xbar-${what}-`));

describe('messages for bad input', () => {
  it('--gpu without a GPU provider, and --provider with a value it does not take', async () => {
    const base = ['eval', '--model', join(ROOT, 'models/vit-fmnist'), '--data', 'fashion-mnist:x'];
    const gpu = await xbarAsync([...base, '--gpu', '1']);
    assert.equal(gpu.status, 1);
    assert.equal(gpu.stderr.trim(), 'xbar: --gpu 1: choose a GPU with --provider webgpu or auto');
    const provider = await xbarAsync([...base, '--provider', 'cuda']);
    assert.notEqual(provider.status, 0);
    assert.match(provider.stderr, /--provider.*cuda/);
    assert.match(provider.stderr, /cpu.*webgpu.*auto/);
  });

  it('a spec whose technology has no cost numbers: the accuracy, and the cost named as missing and why', async () => {
    const demo = `fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`;
    const args = ['eval', '--model', join(ROOT, 'models/vit-fmnist'), '--data', demo, '--hw', 'ideal'];
    const r = await xbarAsync([...args, '--limit', '4', '--repeats', '1']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /analog\s+[01]\.\d{4}/);
    assert.match(
      r.stdout,
      /cost\s+none: technology 'ideal' has no cost numbers \(fefet, sram, rram, pcm have\)/,
    );
    const json = await xbarAsync([...args, '--limit', '4', '--repeats', '1', '--json']);
    assert.equal(json.status, 0, json.stderr);
    assert.equal(JSON.parse(json.stdout).cost, null);
  });

  it('--workers with --queue, in every command that runs points: refused before any work, naming both', async () => {
    const model = join(ROOT, 'models/vit-fmnist');
    // an experiment's --out is made as its flag is read: a folder of the test's own
    const out = ['--out', tmp('queue-workers')];
    for (const command of [
      ['sweep', join(ROOT, 'sweeps/adc-bits.yaml')],
      ['experiment', 'clipformer', '--model', model, ...out],
      ['experiment', 'pto', '--model', join(ROOT, 'models/bert-sst2'), ...out],
      ['experiment', 'ablation', '--model', model, ...out],
      ['experiment', 'trex', '--model', model, ...out],
    ]) {
      const r = await xbarAsync([...command, '--queue', 'redis://127.0.0.1:1', '--workers', '2']);
      assert.equal(r.status, 1, command.join(' '));
      assert.equal(
        r.stderr.trim(),
        'xbar: --workers 2: with --queue the points run on `xbar worker --queue redis://127.0.0.1:1` processes; start those instead',
        command.join(' '),
      );
    }
  });

  it('a GLUE file with only a header names the file', async () => {
    const dir = tmp('glue');
    writeFileSync(join(dir, 'dev.tsv'), 'sentence\tlabel\n');
    const r = await xbarAsync([
      'eval',
      '--model',
      join(ROOT, 'models/bert-sst2'),
      '--data',
      `glue-sst2:${dir}`,
    ]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr.trim(),
      `xbar: ${join(dir, 'dev.tsv')}: no examples: only a header row; a SST-2 file needs at least one row after it`,
    );
  });

  it('an image the processor does not bring to the model’s size names the image, the sizes and the settings', async () => {
    const images = tmp('imgs');
    mkdirSync(join(images, 'a'));
    const png = new PNG({ width: 64, height: 48 });
    png.data.fill(128);
    writeFileSync(join(images, 'a', 'x.png'), PNG.sync.write(png));
    const { dir } = vitMnist(); // image_size 28
    const pp = join(dir, 'preprocessor_config.json');
    writeFileSync(pp, JSON.stringify({ size: { shortest_edge: 28 } }));
    const r = await xbarAsync(['eval', '--model', dir, '--data', `imagefolder:${images}`]);
    assert.equal(r.status, 1);
    assert.equal(
      r.stderr.trim(),
      `xbar: ${join(images, 'a', 'x.png')}: ${pp} makes this 64×48 image 37×28 pixels (size, crop_size), the model takes 28×28 (image_size in its config.json)`,
    );
  });

  it('a one-channel model with per-channel lists in preprocessor_config.json, as transformers writes them', () => {
    const { dir } = vitMnist();
    const model = loadModel(dir);
    const spec = parseDataSpec(`fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`);
    const first = () => openData(spec, model, { modelDir: dir, limit: 2 }).inputs(0, 2).pixel_values!.data;
    const pp = join(dir, 'preprocessor_config.json');
    writeFileSync(pp, JSON.stringify({ image_mean: 0.2, image_std: 0.3 }));
    const numbers = first();
    writeFileSync(pp, JSON.stringify({ image_mean: [0.2], image_std: [0.3] }));
    assert.deepEqual(first(), numbers);
    writeFileSync(pp, JSON.stringify({ image_mean: [0.2, 0.2, 0.2], image_std: [0.3] }));
    assert.throws(first, /image_mean: 3 values for a model of 1 channel \(num_channels in its config.json\)/);
  });

  it('mvm: inputs without x, and non-finite values in weights or inputs', async () => {
    const dir = tmp('mvm');
    const weights = join(dir, 'w.safetensors');
    writeSafetensors(weights, { weight: hostArray('float32', [2, 3], Float32Array.of(1, 2, 3, 4, 5, 6)) });
    writeFileSync(join(dir, 'y.json'), JSON.stringify({ y: [[1, 2, 3]] }));
    writeSafetensors(join(dir, 'nan.safetensors'), {
      x: hostArray('float32', [2, 3], Float32Array.of(1, 2, 3, 4, Number.NaN, 6)),
    });
    const bad = join(dir, 'bad.safetensors');
    writeSafetensors(bad, { weight: hostArray('float32', [2, 3], Float32Array.of(1, 2, Infinity, 4, 5, 6)) });
    writeFileSync(join(dir, 'x.json'), JSON.stringify({ x: [[1, 2, 3]] }));
    const mvm = (w: string, x: string) =>
      xbarAsync(['mvm', '--weights', w, '--inputs', join(dir, x), '--hw', 'ideal']);
    const [noX, nanX, infW, ok] = await Promise.all([
      mvm(weights, 'y.json'),
      mvm(weights, 'nan.safetensors'),
      mvm(bad, 'x.json'),
      mvm(weights, 'x.json'),
    ]);
    assert.match(noX.stderr, /y\.json: needs a field 'x', a nested array of shape \[n, 3\]/);
    assert.match(nanX.stderr, /nan\.safetensors: x\[1\]\[1\]: NaN is not a finite number/);
    assert.match(infW.stderr, /bad\.safetensors: weight\[0\]\[2\]: Infinity is not a finite number/);
    assert.equal(ok.status, 0, ok.stderr);
    assert.deepEqual(JSON.parse(ok.stdout).ideal, [[14, 32]]);
  });

  it('an output folder that cannot be written: a message naming the flag and why, and no hang under /proc', async () => {
    const [proc, sys, readOnly] = await Promise.all([
      xbarAsync(['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--out', '/proc/xbar-out'], {
        timeout: 30e3,
      }),
      xbarAsync(['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--out', '/sys/kernel/xbar-out']),
      xbarAsync(['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--out', '/sys/kernel']),
    ]);
    assert.equal(
      proc.stderr.trim(),
      'xbar: --out /proc/xbar-out: cannot create this folder: /proc takes no new folders (ENOENT)',
    );
    assert.match(
      sys.stderr,
      /^xbar: --out \/sys\/kernel\/xbar-out: cannot create this folder: (EPERM: operation not permitted|EACCES: permission denied)$/m,
    );
    assert.match(
      readOnly.stderr,
      /^xbar: --out \/sys\/kernel: cannot write in this folder: EACCES: permission denied$/m,
    );
    for (const r of [proc, sys, readOnly]) assert.equal(r.status, 1);
    assert.throws(
      () => writeFileAtomic('/sys/kernel/x.json', '{}'),
      /\/sys\/kernel\/x\.json: cannot write: EACCES: permission denied$/,
    );
    // what a read-only file system gives, without the temporary file's path
    const erofs = Object.assign(new Error("EROFS: read-only file system, open '/ro/out/cost.json.tmp-7'"), {
      code: 'EROFS',
    });
    assert.equal(whyNot(erofs), 'EROFS: read-only file system');
  });
});
