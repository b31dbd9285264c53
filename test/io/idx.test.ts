/** IDX reading: MNIST and Fashion-MNIST slices (the full Fashion-MNIST when installed), raw = gzipped, and errors that name the file and the problem. */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { IDX_IMAGES, IDX_LABELS, loadMnistLike, readIdx } from '../../src/io/idx.js';
import { FIXTURES, ROOT } from '../helpers/models.js';

/** The first 1,024 training and 300 test images and labels of MNIST (test/fixtures/README.md). */
const MNIST = join(FIXTURES, 'mnist');
const FASHION = '/usr/share/datasets/fashion-mnist';

/** Bytes of an IDX file: magic 0x000008<rank>, dims, data. */
function idxBytes(dims: number[], data: ArrayLike<number>, magic = 0x0800 + dims.length): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, magic);
  for (const [i, d] of dims.entries()) v.setUint32(4 + 4 * i, d);
  out.set(Array.from(data), 4 + 4 * dims.length);
  return out;
}

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'xbar-idx-'));
}

const classCounts = (labels: Uint8Array): number[] => {
  const c = new Array(10).fill(0);
  for (const l of labels) c[l]++;
  return c;
};

const sum = (bytes: Uint8Array): number => bytes.reduce((a, b) => a + b, 0);

// The counts and pixel sums below were computed from the slices with Python's gzip module, not xbar.
describe('MNIST', () => {
  it('reads the test slice: 300 28×28 images with its class counts and pixels', () => {
    const s = loadMnistLike(MNIST, 'test');
    assert.deepEqual([s.count, s.rows, s.cols], [300, 28, 28]);
    assert.equal(s.images.length, 300 * 28 * 28);
    assert.deepEqual(classCounts(s.labels), [24, 41, 32, 24, 37, 29, 24, 34, 21, 34]);
    assert.equal(s.labels[0], 7);
    assert.equal(s.images[0], 0, 'corner pixels are background');
    assert.equal(sum(s.images), 7198101);
    assert.equal(sum(s.images.subarray(299 * 784)), 25582, 'the last image');
    assert.ok(s.imagesPath.endsWith('t10k-images-idx3-ubyte.gz'));
  });

  it('reads the train slice: 1,024 images with its class counts and pixels', () => {
    const s = loadMnistLike(MNIST, 'train');
    assert.equal(s.count, 1024);
    assert.deepEqual(classCounts(s.labels), [100, 120, 101, 95, 108, 92, 95, 122, 90, 101]);
    assert.equal(s.labels[0], 5);
    assert.equal(sum(s.images), 26181487);
  });

  it('reads a raw (gunzipped) copy to the same bytes', () => {
    const dir = tempDir();
    const gz = readIdx(join(MNIST, 't10k-labels-idx1-ubyte.gz'), IDX_LABELS);
    writeFileSync(join(dir, 'labels'), idxBytes(gz.dims, gz.data));
    const raw = readIdx(join(dir, 'labels'), IDX_LABELS);
    assert.deepEqual(raw.dims, [300]);
    assert.deepEqual(raw.data, gz.data);
  });
});

describe('Fashion-MNIST', () => {
  it('reads the shipped demo slice: 1,000 test and 500 training images', () => {
    const demo = join(ROOT, 'data/fashion-mnist-demo');
    const test = loadMnistLike(demo, 'test');
    const train = loadMnistLike(demo, 'train');
    assert.deepEqual([test.count, train.count, train.rows, train.cols], [1000, 500, 28, 28]);
    assert.deepEqual(classCounts(test.labels), [107, 105, 111, 93, 115, 87, 97, 95, 95, 95]);
    assert.deepEqual(classCounts(train.labels), [52, 54, 47, 49, 53, 51, 53, 49, 50, 42]);
    assert.deepEqual([sum(test.images), sum(train.images)], [58034149, 28368245]);
  });

  const skip =
    !existsSync(FASHION) &&
    `Fashion-MNIST not installed at ${FASHION} (apt-get install dataset-fashion-mnist)`;
  it('reads both splits with 6,000 / 1,000 images per class', { skip }, () => {
    const train = loadMnistLike(FASHION, 'train');
    const test = loadMnistLike(FASHION, 'test');
    assert.deepEqual([train.count, test.count, test.rows, test.cols], [60000, 10000, 28, 28]);
    assert.deepEqual(classCounts(train.labels), new Array(10).fill(6000));
    assert.deepEqual(classCounts(test.labels), new Array(10).fill(1000));
  });
});

describe('IDX files', () => {
  it('reads raw and gzipped files, whatever their extension', () => {
    const dir = tempDir();
    const bytes = idxBytes([2, 2, 3], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    writeFileSync(join(dir, 'a.idx'), bytes);
    writeFileSync(join(dir, 'a.idx.gz'), gzipSync(bytes));
    writeFileSync(join(dir, 'b.idx'), gzipSync(bytes));
    for (const name of ['a.idx', 'a.idx.gz', 'b.idx']) {
      const r = readIdx(join(dir, name), IDX_IMAGES);
      assert.deepEqual(r.dims, [2, 2, 3]);
      assert.deepEqual(Array.from(r.data), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    }
    assert.deepEqual(readIdx(join(dir, 'a.idx')).dims, [2, 2, 3], 'any rank without an expected magic');
  });

  it('names the file, the magic found and the one expected', () => {
    const dir = tempDir();
    const path = join(dir, 'labels.idx');
    writeFileSync(path, idxBytes([3], [1, 2, 3]));
    assert.throws(
      () => readIdx(path, IDX_IMAGES),
      (e: Error) => {
        assert.match(e.message, /labels\.idx: magic 0x00000801, expected 0x00000803/);
        return true;
      },
    );
    writeFileSync(path, idxBytes([3], [1, 2, 3], 0x00000d01)); // float32 data
    assert.throws(() => readIdx(path), /magic 0x00000d01, expected 0x000008NN/);
  });

  it('reports truncation and trailing bytes with the sizes involved', () => {
    const dir = tempDir();
    const path = join(dir, 'x-idx3-ubyte');
    const full = idxBytes([2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 8]);
    writeFileSync(path, full.subarray(0, full.length - 3));
    assert.throws(
      () => readIdx(path),
      /x-idx3-ubyte: truncated: dims \[2, 2, 2\] need 8 data bytes after the header, found 5/,
    );
    writeFileSync(path, full.subarray(0, 10));
    assert.throws(() => readIdx(path), /truncated: 10 bytes, a header of 3 dims needs 16/);
    writeFileSync(path, full.subarray(0, 2));
    assert.throws(() => readIdx(path), /truncated: 2 bytes, the IDX magic alone needs 4/);
    writeFileSync(path, Buffer.concat([full, Buffer.from([0])]));
    assert.throws(
      () => readIdx(path),
      /trailing bytes: dims \[2, 2, 2\] need 8 data bytes after the header, found 9/,
    );
    const gz = gzipSync(full);
    writeFileSync(path, gz.subarray(0, gz.length - 6));
    assert.throws(() => readIdx(path), /x-idx3-ubyte: truncated or corrupt gzip data/);
    assert.throws(() => readIdx(join(dir, 'absent')), /absent: cannot read: ENOENT/);
  });

  it('checks that a split has as many labels as images', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 't10k-images-idx3-ubyte'), idxBytes([2, 1, 1], [0, 255]));
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxBytes([3], [0, 1, 2])));
    assert.throws(
      () => loadMnistLike(dir, 'test'),
      /t10k-labels-idx1-ubyte\.gz: 3 labels, but .*t10k-images-idx3-ubyte has 2 images/,
    );
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'), gzipSync(idxBytes([2], [0, 1])));
    assert.deepEqual(Array.from(loadMnistLike(dir, 'test').labels), [0, 1]);
  });

  it('lists the names it looked for when a split is missing', () => {
    const dir = tempDir();
    assert.throws(
      () => loadMnistLike(dir, 'train'),
      /no train images file: looked for train-images-idx3-ubyte\.gz, train-images-idx3-ubyte/,
    );
    assert.throws(() => loadMnistLike(join(dir, 'nope'), 'test'), /the folder does not exist/);
  });

  it('takes the images file of the other kind as an error, not as labels', () => {
    const dir = tempDir();
    writeFileSync(
      join(dir, 't10k-images-idx3-ubyte'),
      readFileSync(join(MNIST, 't10k-labels-idx1-ubyte.gz')),
    );
    writeFileSync(join(dir, 't10k-labels-idx1-ubyte'), idxBytes([1], [0]));
    assert.throws(
      () => loadMnistLike(dir, 'test'),
      /t10k-images-idx3-ubyte: magic 0x00000801, expected 0x00000803/,
    );
  });
});
