import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { z } from 'zod';
import { InputError } from '../../src/util/errors.js';
import { readBytes } from '../../src/util/files.js';
import { parseWith } from '../../src/util/validate.js';

describe('InputError', () => {
  it('renders a message, a problem of a place, or problems listed under it', () => {
    assert.equal(
      new InputError('--seed x: expected a whole number').message,
      '--seed x: expected a whole number',
    );
    const one = new InputError('a.json', 'invalid JSON');
    assert.equal(one.message, 'a.json: invalid JSON');
    assert.equal(one.where, 'a.json');
    const list = new InputError(
      'w.safetensors',
      ["missing tensor 'x' [2]", { field: 'adc.bits', value: 0, allowed: 'use 1..16' }],
      'the checkpoint does not fit the model',
    );
    assert.equal(
      list.message,
      "w.safetensors: the checkpoint does not fit the model\n  ✖ missing tensor 'x' [2]\n  ✖ adc.bits: 0 is not allowed, use 1..16",
    );
    assert.equal(list.problems.length, 2);
    assert.throws(() => readBytes('/nowhere/x'), {
      name: 'InputError',
      message: '/nowhere/x: cannot read: ENOENT',
    });
  });

  it('carries zod issues as field, value and allowed', () => {
    const s = z.object({ bits: z.number().int().min(1, { error: 'use 1..16' }) }).strict();
    try {
      parseWith(s, { bits: 0 }, 'spec.yaml');
      assert.fail('no error');
    } catch (e) {
      assert.ok(e instanceof InputError);
      assert.deepEqual(e.problems, [{ field: 'bits', value: 0, allowed: 'use 1..16' }]);
      assert.equal(e.message, 'spec.yaml:\n  ✖ bits: 0 is not allowed, use 1..16');
    }
  });
});
