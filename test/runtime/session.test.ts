/** Compiling and running graphs: params fed or baked, session reuse, and clear errors on misuse. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { f32, i32, toNumbers } from '../../src/graph/ndarray.js';
import { apply, input, param } from '../../src/graph/tensor.js';
import { compile, sessionCount } from '../../src/runtime/session.js';

describe('compile and run', () => {
  it('feeds params by default, so updating a value in place changes the result', async () => {
    const w = param('w', f32([2, 2], [1, 0, 0, 1]));
    const x = input('x', [1, 2]);
    const g = await compile({ y: x.matmul(w) });
    const feeds = { x: f32([1, 2], [3, 4]) };
    assert.deepEqual(toNumbers((await g.run(feeds)).y!), [3, 4]);
    (w.attrs as { value: { data: Float32Array } }).value.data.set([2, 0, 0, 2]);
    assert.deepEqual(toNumbers((await g.run(feeds)).y!), [6, 8]);
    assert.deepEqual(toNumbers((await g.run({ ...feeds, w: f32([2, 2], [0, 1, 1, 0]) })).y!), [4, 3]);
  });

  it('bakes params into the model when asked, with the same result', async () => {
    const w = param('w', f32([2, 3], [1, 2, 3, 4, 5, 6]));
    const x = input('x', [1, 2]);
    const fed = await compile({ y: x.matmul(w) });
    const baked = await compile({ y: x.matmul(w) }, { bakeParams: true });
    assert.deepEqual(
      baked.inputs.map((i) => i.name),
      ['x'],
    );
    const feeds = { x: f32([1, 2], [1, -1]) };
    assert.deepEqual((await fed.run(feeds)).y!.data, (await baked.run(feeds)).y!.data);
  });

  it('reuses one session for graphs of the same structure and shapes', async () => {
    const build = () =>
      input('a', [3])
        .mul(2)
        .add(input('b', [3]));
    const before = sessionCount();
    await compile({ y: build() });
    await compile({ y: build() });
    assert.equal(sessionCount() - before, 1);
    await compile({
      y: input('a', [4])
        .mul(2)
        .add(input('b', [4])),
    });
    assert.equal(sessionCount() - before, 2);
  });
});

describe('errors name the op, the input and the shapes', () => {
  it('shape mismatch in an op', () => {
    assert.throws(
      () => input('a', [2, 3]).matmul(input('b', [4, 5])),
      /matmul: shapes \[2, 3\] and \[4, 5\] do not multiply/,
    );
    assert.throws(
      () => input('a', [2, 3]).add(input('b', [4])),
      /add: shapes \[2, 3\] and \[4\] do not broadcast/,
    );
    assert.throws(() => input('a', [6]).reshape([4, -1]), /reshape: cannot reshape \[6\] to \[4, -1\]/);
  });
  it('dtype mismatch', () => {
    assert.throws(
      () => input('a', [2]).add(input('b', [2], 'int32')),
      /add: dtypes differ: float32 \[2\] and int32 \[2\]/,
    );
    assert.throws(() => input('a', [2], 'int32').exp(), /exp: expects float32, got int32/);
  });
  it('unknown op', () => {
    // biome-ignore lint/suspicious/noExplicitAny: deliberately wrong
    assert.throws(() => apply('conv9d' as any, [], {} as never), /conv9d: unknown op/);
  });
  it('missing inputs at run time, listed with dtype and shape', async () => {
    const g = await compile({
      y: input('a', [2])
        .add(input('b', [2]))
        .mul(input('n', [], 'float32')),
    });
    await assert.rejects(
      g.run({ a: f32([2]) }),
      /missing input\(s\):\n {2}b: float32 \[2\]\n {2}n: float32 \[\]/,
    );
  });
  it('wrong shape, wrong dtype and unknown names at run time', async () => {
    const g = await compile({ y: input('a', [2]).mul(3) });
    await assert.rejects(g.run({ a: f32([3]) }), /input 'a' is float32 \[3\], the graph needs float32 \[2\]/);
    await assert.rejects(g.run({ a: i32([2]) }), /input 'a' is int32 \[2\], the graph needs float32 \[2\]/);
    await assert.rejects(
      g.run({ a: f32([2]), z: f32([1]) }),
      /unknown input\(s\) 'z'; the graph takes:\n {2}a: float32 \[2\]/,
    );
  });
  it('two different leaves with one name', async () => {
    await assert.rejects(
      compile({ y: input('a', [2]).add(input('a', [1])) }),
      /two different leaves are named 'a'/,
    );
    await assert.rejects(
      compile({ y: input('a', [2]).add(param('a', f32([2]))) }),
      /two different leaves are named 'a'/,
    );
    // inputs declared alike are one input (a feed has one value per name): a forward pass built twice
    const g = await compile({ y: input('a', [2]).add(input('a', [2]).mul(2)) }, { cache: false });
    assert.deepEqual(toNumbers((await g.run({ a: f32([2], [1, 2]) }))['y']!), [3, 6]);
  });
});
