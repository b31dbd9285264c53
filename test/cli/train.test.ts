/** `xbar train --model config.json`: a model from a Hugging Face config file, as the README writes it. */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { xbarAsync } from '../helpers/cli.js';
import { tinyFashionMnist } from '../helpers/data.js';
import { vitMnist } from '../helpers/models.js';

describe('xbar train', () => {
  it('starts from random weights of a config.json file', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'xbar-train-'));
    copyFileSync(join(vitMnist().dir, 'config.json'), join(cwd, 'config.json')); // a 1-layer ViT, 28×28 gray
    const data = `fashion-mnist:${tinyFashionMnist(32)}`;
    const args = [
      'train',
      '--model',
      'config.json',
      '--data',
      data,
      '--out',
      'runs/vit',
      '--epochs',
      '1',
      '--batch',
      '16',
    ];
    const r = await xbarAsync(args, { cwd });
    assert.equal(r.status, 0, r.stderr);
    const saved = JSON.parse(readFileSync(join(cwd, 'runs/vit/config.json'), 'utf8'));
    assert.equal(saved.hidden_size, 16);
    assert.equal(saved.num_channels, 1);
    const state = JSON.parse(readFileSync(join(cwd, 'runs/vit/trainer_state.json'), 'utf8'));
    assert.equal(state.epoch, 1);
    const bad = await xbarAsync(['train', '--model', 'nowhere.json', '--data', data, '--out', 'runs/x'], {
      cwd,
    });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /nowhere\.json/);
  });
});
