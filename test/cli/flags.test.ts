/** Command-line flags: one parser per kind of value, the same message everywhere, no non-finite numbers. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { finiteNumber, flag, numberList, oneOf, wholeNumber } from '../../src/cli/flags.js';
import { xbarAsync } from '../helpers/cli.js';

describe('flag parsers', () => {
  it('whole numbers: bounds, and no fractions, exponents past 2⁵³, blanks or non-numbers', () => {
    assert.equal(wholeNumber('--seed', 0)('0'), 0);
    assert.equal(wholeNumber('--repeats')('12'), 12);
    for (const bad of ['0', '-1', '1.5', 'NaN', 'Infinity', '1e999', '', ' ', 'ten']) {
      assert.throws(
        () => wholeNumber('--repeats')(bad),
        new RegExp(`--repeats ${bad}: expected a whole number ≥ 1$`),
      );
    }
    assert.throws(() => wholeNumber('--seed', 0)('-1'), /--seed -1: expected a whole number ≥ 0/);
  });

  it('finite numbers in a range, named as intervals', () => {
    assert.equal(finiteNumber('--beta', { gt: 0, max: 1 })('0.25'), 0.25);
    assert.throws(
      () => finiteNumber('--beta', { gt: 0, max: 1 })('0'),
      /--beta 0: expected a number in \(0, 1\]/,
    );
    assert.throws(
      () => finiteNumber('--dropout', { min: 0, lt: 1 })('1'),
      /--dropout 1: expected a number in \[0, 1\)/,
    );
    assert.throws(() => finiteNumber('--lr', { gt: 0 })('Infinity'), /--lr Infinity: expected a number > 0/);
    assert.throws(() => finiteNumber('--sigmas', { min: 0 })('NaN'), /--sigmas NaN: expected a number ≥ 0/);
    assert.throws(() => finiteNumber('--x')('-Infinity'), /--x -Infinity: expected a finite number/);
  });

  it('lists and choices', () => {
    assert.deepEqual(numberList('--targets', { gt: 0 })('0.4, 0.3'), [0.4, 0.3]);
    assert.throws(
      () => numberList('--targets', { gt: 0 })('0.4,NaN'),
      /--targets 0.4,NaN: expected numbers > 0, comma-separated/,
    );
    assert.equal(oneOf('--split', ['test', 'dev', 'train'])('dev'), 'dev');
    assert.throws(
      () => oneOf('--split', ['test', 'dev', 'train'])('val'),
      /--split val: use test, dev or train/,
    );
  });

  it('a default goes through the same parser as a value on the command line', () => {
    const time = flag('time', { value: '1h' });
    assert.deepEqual(time.defaultValue, { text: '1h', seconds: 3600 });
    assert.equal(flag('seed', { value: 0 }).defaultValue, 0);
    assert.throws(() => flag('time').parseArg!('1e999', undefined), /--time 1e999: expected a duration/);
    assert.equal(flag('model', { required: true }).mandatory, true);
  });
});

describe('every command refuses non-finite numbers, naming the flag', () => {
  const cases: [string[], RegExp][] = [
    [
      ['mvm', '--weights', 'w', '--inputs', 'x.json', '--hw', 'ideal', '--seed', 'NaN'],
      /--seed NaN: expected a whole number ≥ 0/,
    ],
    [
      ['mvm', '--weights', 'w', '--inputs', 'x.json', '--hw', 'ideal', '--repeats', 'Infinity'],
      /--repeats Infinity/,
    ],
    [['eval', '--model', 'm', '--data', 'mnist:d', '--time', '1e999'], /--time 1e999: expected a duration/],
    [
      ['eval', '--model', 'm', '--data', 'mnist:d', '--batch', 'NaN'],
      /--batch NaN: expected a whole number ≥ 1/,
    ],
    [
      ['train', '--model', 'm', '--data', 'mnist:d', '--out', 'o', '--lr', 'NaN'],
      /--lr NaN: expected a number > 0/,
    ],
    [
      ['train', '--model', 'm', '--data', 'mnist:d', '--out', 'o', '--weight-decay', 'NaN'],
      /--weight-decay NaN/,
    ],
    [['train', '--model', 'm', '--data', 'mnist:d', '--out', 'o', '--seed', 'NaN'], /--seed NaN/],
    [
      ['cost', '--model', 'deit-s', '--hw', 'fefet-trex', '--beta', 'NaN'],
      /--beta NaN: expected a number in \(0, 1\]/,
    ],
    [
      ['experiment', 'pto', '--model', 'm', '--percentile', 'NaN'],
      /--percentile NaN: expected a number in \(0, 100\]/,
    ],
    [['experiment', 'pto', '--model', 'm', '--current', 'abs'], /--current abs: .*signed.*magnitude/],
    [['experiment', 'trex', '--model', 'm', '--targets', '0.3,Infinity'], /--targets 0.3,Infinity/],
    [
      ['trex', 'search', '--model', 'm', '--data', 'mnist:d', '--hw', 'fefet-trex', '--target-delay', 'NaN'],
      /--target-delay NaN/,
    ],
    [['demo', '--repeats', 'NaN'], /--repeats NaN/],
    [
      ['hw', 'show', 'rram-clipformer', '--set', 'adc.bits=.nan'],
      /adc\.bits: NaN is not allowed, use a whole number 1\.\.16/,
    ],
  ];
  it('before doing any work', async () => {
    const runs = await Promise.all(cases.map(([args]) => xbarAsync(args)));
    for (const [i, r] of runs.entries()) {
      assert.equal(r.status, 1, cases[i]![0].join(' '));
      assert.match(r.stderr, cases[i]![1], cases[i]![0].join(' '));
    }
  });
});

describe('experiment pto', () => {
  it('calibrates on the paper’s N = 2 inputs and the signed column current unless told otherwise', async () => {
    const r = await xbarAsync(['experiment', 'pto', '--help']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /--calibration <n>(?:(?!--)[\s\S])*\(default:\s+2\)/);
    assert.match(r.stdout, /--current <what>(?:(?!--)[\s\S])*\(default:\s+signed\)/);
  });
});
