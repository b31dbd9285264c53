/** Loading HF folders: standard sizes, round trips, and errors that name the file and the problem. */
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { readCheckpoint, writeSafetensors } from '../../src/io/safetensors.js';
import { loadModel, MODEL_SIZES, parseModelConfig, randomModel, toHfConfig } from '../../src/models/index.js';
import { FIXTURES } from './parity.test.js';

/** A copy of a fixture folder whose config and tensors a test may change. */
function copyFixture(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `xbar-${name}-`));
  cpSync(join(FIXTURES, name), dir, { recursive: true });
  return dir;
}
const editConfig = (dir: string, f: (c: Record<string, unknown>) => void) => {
  const c = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  f(c);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(c));
};
const editTensors = (
  dir: string,
  f: (t: Record<string, import('../../src/graph/ndarray.js').HostArray>) => void,
) => {
  const ck = readCheckpoint(dir);
  const t = Object.fromEntries([...ck.tensors].map(([n, s]) => [n, s.toHost()]));
  f(t);
  writeSafetensors(join(dir, 'model.safetensors'), t);
};

describe('model configs', () => {
  it('standard sizes have the published parameter counts', () => {
    // DeiT-S 22.4M (with distillation head), ViT-B/16 86.6M, BERT-base 109.5M, RoBERTa-base 124.6M,
    // BERT-large 335.1M, RoBERTa-large 355.4M (with heads)
    const published: Record<string, number> = {
      'deit-s': 22.4e6,
      'vit-b': 86.6e6,
      'bert-base': 109.5e6,
      'roberta-base': 124.6e6,
      'bert-large': 335.1e6,
      'roberta-large': 355.4e6,
    };
    for (const [name, want] of Object.entries(published)) {
      const got = randomModel(MODEL_SIZES[name]!, 0, 0)
        .params()
        .reduce((s, p) => s + p.size, 0);
      assert.ok(Math.abs(got / want - 1) < 0.01, `${name}: ${got} parameters`);
    }
  });

  it('round-trips through the HF form', () => {
    for (const c of Object.values(MODEL_SIZES)) assert.deepEqual(parseModelConfig(toHfConfig(c), 'x'), c);
  });

  it('rejects an unknown model_type, listing the supported ones', () => {
    assert.throws(
      () => parseModelConfig({ model_type: 'gpt2' }, 'cfg.json'),
      /cfg.json:\n {2}✖ model_type: "gpt2" is not supported; xbar reads vit, deit, bert, roberta/,
    );
  });

  it('names the field, value and rule of an invalid config', () => {
    assert.throws(
      () =>
        parseModelConfig({ ...toHfConfig(MODEL_SIZES['bert-base']!), num_attention_heads: 0 }, 'cfg.json'),
      /num_attention_heads: Too small: expected number to be >0, received 0/,
    );
    assert.throws(
      () => parseModelConfig({ ...toHfConfig(MODEL_SIZES['bert-base']!), hidden_act: 'swish' }, 'cfg.json'),
      /hidden_act: .*"gelu".*received "swish"/,
    );
    assert.throws(
      () =>
        parseModelConfig(
          { ...toHfConfig(MODEL_SIZES['bert-base']!), position_embedding_type: 'relative_key' },
          'cfg.json',
        ),
      /position_embedding_type/,
    );
  });
});

describe('loading checkpoints', () => {
  it('saves and reloads a model to the same weights', () => {
    const model = loadModel(join(FIXTURES, 'bert'));
    const dir = mkdtempSync(join(tmpdir(), 'xbar-save-'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify(toHfConfig(model.config)));
    writeSafetensors(join(dir, 'model.safetensors'), model.store.toHf());
    const again = loadModel(dir);
    const a = model.store.toHf();
    const b = again.store.toHf();
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    for (const k of Object.keys(a)) assert.deepEqual(b[k]!.data, a[k]!.data, k);
  });

  it('lists every missing tensor and every unexpected one in one error', () => {
    const dir = copyFixture('vit');
    editTensors(dir, (t) => {
      delete t['vit.layernorm.weight'];
      delete t['classifier.bias'];
      t['vit.extra.weight'] = t['classifier.weight']!;
    });
    assert.throws(
      () => loadModel(dir),
      (e: Error) => {
        assert.match(e.message, /model\.safetensors: the checkpoint does not fit the model/);
        assert.match(e.message, /missing tensor 'vit\.layernorm\.weight' \[48\]/);
        assert.match(e.message, /missing tensor 'classifier\.bias' \[5\]/);
        assert.match(e.message, /unexpected tensor\(s\) not used by this architecture: 'vit\.extra\.weight'/);
        return true;
      },
    );
  });

  it('names a tensor whose shape does not fit the config', () => {
    const dir = copyFixture('bert');
    editConfig(dir, (c) => {
      c['intermediate_size'] = 64;
    });
    assert.throws(
      () => loadModel(dir),
      /tensor 'bert\.encoder\.layer\.0\.intermediate\.dense\.weight' is \[48, 32\], the config needs \[64, 32\]/,
    );
  });

  it('reads older checkpoints that name LayerNorm parameters gamma and beta', () => {
    const dir = copyFixture('bert');
    const ln = 'bert.embeddings.LayerNorm';
    editTensors(dir, (t) => {
      for (const [now, old] of [
        ['weight', 'gamma'],
        ['bias', 'beta'],
      ]) {
        t[`${ln}.${old}`] = t[`${ln}.${now}`]!;
        delete t[`${ln}.${now}`];
      }
    });
    const want = loadModel(join(FIXTURES, 'bert')).store.toHf();
    const got = loadModel(dir).store.toHf();
    for (const k of [`${ln}.weight`, `${ln}.bias`]) assert.deepEqual(got[k]!.data, want[k]!.data, k);
  });

  it('a missing config.json or a truncated safetensors file is named', () => {
    const dir = copyFixture('roberta');
    const st = join(dir, 'model.safetensors');
    writeFileSync(st, readFileSync(st).subarray(0, 1000));
    assert.throws(() => loadModel(dir), /model\.safetensors/);
    assert.throws(() => loadModel(tmpdir()), /config\.json:\n {2}✖ not found/);
  });
});
