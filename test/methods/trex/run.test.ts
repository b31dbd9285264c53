/** The TReX search end to end on a tiny BERT and SST-2: choice, training, selection, resume. */
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadSpec } from '../../../src/analog/presets.js';
import { openTrexData } from '../../../src/methods/trex/data.js';
import { BRIEF_DEFAULTS, reuseDelays, trexSearch } from '../../../src/methods/trex/search.js';
import { loadModel } from '../../../src/models/index.js';
import { readJson } from '../../../src/util/files.js';
import { FIXTURES, savedModel } from '../../helpers/models.js';

describe('xbar trex search (tiny BERT, SST-2)', () => {
  const { dir } = savedModel(
    {
      model_type: 'bert',
      vocab_size: 30522,
      hidden_size: 16,
      num_hidden_layers: 3,
      num_attention_heads: 2,
      intermediate_size: 32,
      num_labels: 2,
    },
    { 'vocab.txt': join(FIXTURES, 'vocab/bert-base-uncased/vocab.txt') },
  );
  const model = loadModel(dir);
  const hw = loadSpec('fefet-trex');
  const data = openTrexData(model, dir, `glue-sst2:${join(FIXTURES, 'glue/SST-2')}`, {
    fraction: 0.5, // 200 of the fixture's 400 training sentences; the last 64 are held out
    heldOut: 64,
    maxLength: 16,
  });
  // a target between the delays of N_reuse = 1 and 0 makes Algorithm 1 pick 1
  const all = reuseDelays({ model, hw, seqLen: 16 });
  const o = {
    model,
    modelDir: dir,
    train: data.train,
    heldOut: data.heldOut,
    hw,
    seqLen: 16,
    brief: { ...BRIEF_DEFAULTS, batch: 32 },
    finetune: null,
    out: mkdtempSync(join(tmpdir(), 'xbar-trex-search-')),
    log: () => {},
  };
  it('at a target between N = 1 and N = 0 trains both N = 1 patterns and keeps the lower loss', async () => {
    assert.equal(all.length, 3);
    const target = (all[0]! + all[1]!) / 2;
    const st = await trexSearch({ ...o, targetDelayMs: target });
    assert.equal(st.choice.nReuse, 1);
    assert.deepEqual(
      st.candidates.map((c) => c.encoders),
      [[1], [2]],
    );
    const best = st.candidates.reduce((a, b) => (b.loss! < a.loss! ? b : a));
    assert.equal(st.winner, best.label);
    assert.equal(st.result, best.dir);
    const winner = loadModel(st.result!);
    assert.deepEqual(winner.config.variants?.reuse, best.reuse);
    const file = join(o.out, 'search.json');
    assert.deepEqual(readJson(file), JSON.parse(JSON.stringify(st)));

    // a rerun resumes: nothing is trained again
    const before = st.candidates.map((c) => statSync(join(c.dir, 'model.safetensors')).mtimeMs);
    const again = await trexSearch({ ...o, targetDelayMs: target });
    assert.equal(again.winner, st.winner);
    assert.deepEqual(
      again.candidates.map((c) => statSync(join(c.dir, 'model.safetensors')).mtimeMs),
      before,
    );
  });
});
