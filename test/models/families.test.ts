import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DATA_KINDS, openData } from '../../src/eval/data.js';
import { hostArray } from '../../src/graph/ndarray.js';
import { FAMILIES, familyOf, MODEL_SIZES, parseModelConfig, randomModel } from '../../src/models/index.js';

describe('model families', () => {
  it('the registry alone lists the model types and the built-in sizes', () => {
    assert.deepEqual(
      FAMILIES.flatMap((f) => Object.keys(f.modelTypes)),
      ['vit', 'deit', 'bert', 'roberta'],
    );
    assert.deepEqual(
      Object.keys(MODEL_SIZES),
      FAMILIES.flatMap((f) => Object.keys(f.sizes)),
    );
    assert.throws(
      () => parseModelConfig({ model_type: 'gpt2' }, 'c.json'),
      /xbar reads vit, deit, bert, roberta/,
    );
  });

  it("a family's feeds are its graph's inputs, and what it reads picks the data kinds", () => {
    for (const f of FAMILIES) {
      for (const [name, json] of Object.entries(f.sizes)) {
        const c = { ...parseModelConfig(json, name), layers: 1 };
        assert.equal(familyOf(c), f, name);
        const model = randomModel(c, 0, 0);
        const input = model.input();
        const x =
          input.kind === 'image'
            ? { pixel_values: hostArray('float32', [2, input.channels, input.size, input.size]) }
            : { input_ids: hostArray('int32', [2, 5]) };
        const { feeds, shape } = model.feeds(x);
        assert.equal(shape.batch, 2);
        assert.deepEqual(Object.keys(feeds).sort(), Object.keys(model.graph(shape).inputs).sort(), name);
        const other = Object.entries(DATA_KINDS).find(([k]) => k !== input.kind)![1][0]!;
        assert.throws(
          () => openData({ kind: other, path: '/nowhere' }, model),
          new RegExp(
            `the ${c.modelType} model reads ${input.kind} data \\(${DATA_KINDS[input.kind].join(', ')}\\)`,
          ),
        );
      }
    }
  });
});
