/** `xbar train --model config.json`: a model from a Hugging Face config file, as the README writes it. */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { xbarAsync } from '../helpers/cli.js';
import { tinyFashionMnist } from '../helpers/data.js';

describe('xbar train', () => {
  it('starts from random weights of a config.json file', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'xbar-train-'));
    const config = {
      model_type: 'vit',
      hidden_size: 16,
      num_hidden_layers: 1,
      num_attention_heads: 2,
      intermediate_size: 32,
      image_size: 28,
      patch_size: 7,
      num_channels: 1,
      num_labels: 10,
    };
    writeFileSync(join(cwd, 'config.json'), JSON.stringify(config));
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
