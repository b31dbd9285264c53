/** Invalid architectures, libraries and options are rejected with errors that name field and value. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadSpec } from '../../src/analog/presets.js';
import { cost, crossbarCount, resolveShape } from '../../src/cost/index.js';

const msg = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  assert.fail('expected an error');
};

const deit = resolveShape('deit-s');
const fefet = loadSpec('fefet-trex');

describe('invalid architectures and libraries', () => {
  it('zero crossbars per PE', () => {
    assert.equal(
      msg(() => cost(deit, fefet, { architecture: { crossbarsPerPe: 0 } })),
      'cost architecture:\n  ✖ crossbarsPerPe: 0 is not allowed, use a whole number 1..65536',
    );
  });

  it('a negative energy', () => {
    assert.equal(
      msg(() => cost(deit, fefet, { library: { fefet: { crossbar: { adcEnergyPJ: -1 } } } })),
      'cost library: fefet:\n  ✖ crossbar.adcEnergyPJ: -1 is not allowed, use a number ≥ 0 (pJ per crossbar MVM)',
    );
  });

  it('an unknown field, with a suggestion', () => {
    assert.match(
      msg(() => cost(deit, fefet, { architecture: { crossbarPerPe: 4 } as never })),
      /✖ crossbarPerPe: unknown field \(did you mean 'crossbarsPerPe'\?\)/,
    );
  });

  it('more columns per ADC than a crossbar has', () => {
    assert.match(
      msg(() => cost(deit, fefet, { architecture: { colsPerAdc: 128 } })),
      /colsPerAdc: 128 is not allowed, a crossbar has only 64 columns/,
    );
  });

  it('a technology without cost numbers', () => {
    assert.match(
      msg(() => cost(deit, loadSpec('ideal'))),
      /'ideal' has no cost numbers; use a spec whose technology/,
    );
  });

  it('zero rows in a crossbar count', () => {
    assert.throws(() => crossbarCount(384, 384, 0, 64), /rows = 0, expected a whole number ≥ 1/);
  });
});

describe('invalid options', () => {
  it('reuse beyond the encoders, of encoder 0, or twice the same', () => {
    assert.match(
      msg(() => cost(deit, fefet, { reuse: 12 })),
      /reuse:\n {2}✖ 12 is not allowed, use a whole number 0\.\.11/,
    );
    assert.match(
      msg(() => cost(deit, fefet, { reuse: [0, 3] })),
      /use distinct encoder indices 1\.\.11/,
    );
    assert.match(
      msg(() => cost(deit, fefet, { reuse: [3, 3] })),
      /use distinct encoder indices/,
    );
  });

  it('β outside (0, 1]', () => {
    assert.match(
      msg(() => cost(deit, fefet, { beta: 0 })),
      /beta:\n {2}✖ 0 is not allowed, use a number in \(0, 1\]/,
    );
    assert.match(
      msg(() => cost(deit, loadSpec('pcm-lammie'), { beta: 2 })),
      /2 is not allowed/,
    );
  });

  it('an override that matches no layer the cost model costs', () => {
    const typo = loadSpec('fefet-trex', ['overrides=[{layers: "layr.9.*", set: {adc: {bits: 4}}}]']);
    assert.match(
      msg(() => cost(deit, typo)),
      /overrides\[0\]\.layers: 'layr\.9\.\*' matches no layer; the layers are embeddings\.patch, layer\.0\.query, .*, distillation_classifier$/,
    );
    const four = loadSpec('fefet-trex', ['overrides=[{layers: "layer.9.*", set: {adc: {bits: 4}}}]']);
    assert.ok(cost(deit, four).totals.energyMJ < cost(deit, fefet).totals.energyMJ, 'the override applies');
  });

  it('an unknown model name, with a suggestion', () => {
    assert.match(
      msg(() => resolveShape('deit-z')),
      /'deit-z' is neither a folder nor a model name \(did you mean/,
    );
  });
});
