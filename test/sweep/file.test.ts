/** The sweep file: expansion order, seeds, ids, the points that come out the same, and errors naming the field. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseSweep, pointId } from '../../src/sweep/file.js';
import { hardwareSetsOf } from '../../src/sweep/settings.js';
import { InputError } from '../../src/util/errors.js';
import { ROOT } from '../helpers/models.js';

const MODEL = join(ROOT, 'models/vit-fmnist');
const DATA = `fashion-mnist:${join(ROOT, 'data/fashion-mnist-demo')}`;
const head = `model: ${MODEL}\ndata: ${DATA}\nlimit: 8\n`;

/** The problems of a file that must not parse. */
function problems(text: string): string {
  try {
    parseSweep(text, 'bad.yaml');
  } catch (e) {
    assert.ok(e instanceof InputError, String(e));
    assert.match(e.message, /^bad\.yaml:/);
    return e.message;
  }
  assert.fail('parsed');
}

describe('sweep file', () => {
  it('crosses the grid axes, the first slowest, with seeds as { from, count }', () => {
    const s = parseSweep(
      `${head}hw: rram-clipformer\ngrid:\n  set.adc.bits: [4, 6]\n  time: [1h, 1d]\n  seed: { from: 5, count: 2 }\n`,
      'dir/adc.yaml',
    );
    assert.equal(s.name, 'adc');
    assert.equal(s.points.length, 8);
    assert.deepEqual(
      s.points.map((p) => [p.settings['set.adc.bits'], p.settings['time'], p.settings['seed']]),
      [
        [4, '1h', 5],
        [4, '1h', 6],
        [4, '1d', 5],
        [4, '1d', 6],
        [6, '1h', 5],
        [6, '1h', 6],
        [6, '1d', 5],
        [6, '1d', 6],
      ],
    );
    assert.deepEqual(
      s.points.map((p) => p.index),
      [0, 1, 2, 3, 4, 5, 6, 7],
    );
    assert.deepEqual(hardwareSetsOf(s.points[2]!.settings), ['adc.bits=4', 'timeS=86400']);
    // defaults filled in, the file's fields first
    assert.deepEqual(Object.keys(s.points[0]!.settings), [
      'model',
      'data',
      'limit',
      'hw',
      'set.adc.bits',
      'time',
      'seed',
      'batch',
      'method',
    ]);
  });

  it('gives a point the same id whatever the order of its fields, and different settings different ids', () => {
    const a = parseSweep(`${head}hw: ideal\nseed: 3\n`, 'a.yaml').points[0]!;
    const b = parseSweep(`seed: 3\nhw: ideal\nlimit: 8\ndata: ${DATA}\nmodel: ${MODEL}\n`, 'b.yaml')
      .points[0]!;
    assert.equal(a.id, b.id);
    assert.match(a.id, /^[0-9a-f]{16}$/);
    assert.equal(pointId(a.settings), a.id);
    assert.notEqual(parseSweep(`${head}hw: ideal\nseed: 4\n`, 'a.yaml').points[0]!.id, a.id);
    const spelt = parseSweep(
      `model: ${MODEL.replace('/models/', '/models/./')}/\ndata: ${DATA}/\nlimit: 8\nhw: ideal\nseed: 3\n`,
      'c.yaml',
    );
    assert.equal(spelt.points[0]!.id, a.id, 'a path spelt another way is the same path');
  });

  it('crosses a list with the grid, and keeps one of the points that come out the same', () => {
    const s = parseSweep(
      `${head}hw: rram-clipformer\nlist:\n  - { method: none }\n  - { clipformer.beta: 0.25 }\n  - { method: clipformer }\ngrid:\n  seed: [0, 1]\n  clipformer.alpha: [2, 4]\n`,
      's.yaml',
    );
    // method none drops α (its two α values are one point); a ClipFormer parameter alone means ClipFormer
    const shown = s.points.map((p) => [
      p.settings['method'],
      p.settings['clipformer.alpha'] ?? '-',
      p.settings['clipformer.beta'] ?? '-',
      p.settings['seed'],
    ]);
    assert.deepEqual(shown, [
      ['none', '-', '-', 0],
      ['none', '-', '-', 1],
      ['clipformer', 2, 0.25, 0],
      ['clipformer', 4, 0.25, 0],
      ['clipformer', 2, 0.25, 1],
      ['clipformer', 4, 0.25, 1],
      ['clipformer', 2, 1, 0],
      ['clipformer', 4, 1, 0],
      ['clipformer', 2, 1, 1],
      ['clipformer', 4, 1, 1],
    ]);
    assert.equal(new Set(s.points.map((p) => p.id)).size, s.points.length);
  });

  it('reads `set` as a mapping or as --set assignments', () => {
    const a = parseSweep(
      `${head}hw: pcm-lammie\nset: { adc.bits: 6, dac: { bits: 6, mode: pwm } }\n`,
      'a.yaml',
    );
    const b = parseSweep(`${head}hw: pcm-lammie\nset: [dac.mode=pwm, adc.bits=6, dac.bits=6]\n`, 'a.yaml');
    assert.equal(a.points[0]!.id, b.points[0]!.id);
    assert.equal(a.points[0]!.settings['set.dac.mode'], 'pwm');
  });

  it('names the field, the value and what is allowed', () => {
    assert.match(problems(`${head}limt: 8\n`), /limt: unknown field \(did you mean 'limit'\?\)/);
    assert.match(problems(`${head}grid: {}\n`), /grid: \{\} is not allowed/);
    assert.match(problems(`${head}grid:\n  seed: []\n`), /grid\.seed: an empty list/);
    assert.match(problems(`${head}grid:\n  seed: { from: 0, count: 0 }\n`), /grid\.seed: .*count: n\b/);
    assert.match(problems(`${head}list: []\n`), /list: \[\] is not allowed/);
    assert.match(
      problems(`${head}hw: rram-clipformr\n`),
      /point 0: hw rram-clipformr: .*did you mean 'rram-clipformer'/,
    );
    assert.match(
      problems(`${head}hw: rram-clipformer\ngrid:\n  set.adc.bitz: [4, 6]\n`),
      /point 0: hw rram-clipformer, set adc\.bitz=4: adc\.bitz: unknown field \(did you mean 'bits'\?\)/,
    );
    assert.match(
      problems(`${head}hw: rram-clipformer\nset: { adc.bits: 40 }\n`),
      /adc\.bits: 40 is not allowed, use a whole number 1\.\.16/,
    );
    assert.match(
      problems(`${head}grid:\n  time: [1h, 3 parsecs]\n`),
      /grid\.time\[1\]: "3 parsecs": expected a duration/,
    );
    assert.match(problems(`${head}time: 1h\n`), /time needs hardware/);
    assert.match(
      problems(`${head}hw: ideal\nclipformer: "0.5,2"\n`),
      /clipformer: "0\.5,2" is not allowed, use α,β/,
    );
    assert.match(problems(`${head}hw: ideal\nmethod: clipformer\n`), /ideal runs attention digitally/);
    assert.match(problems(`data: ${DATA}\nhw: ideal\n`), /no model; set it/);
    assert.match(
      problems(`model: /nowhere\ndata: ${DATA}\n`),
      /model: "\/nowhere" is not allowed, use a model folder/,
    );
    assert.match(
      problems(`${head}list:\n  - { seed: 1 }\ngrid:\n  seed: [2]\n`),
      /list\[0\]\.seed: the grid sets it too/,
    );
    assert.match(problems('[1, 2]'), /expected a mapping/);
  });
});
