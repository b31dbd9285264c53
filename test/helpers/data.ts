/** Small data sets written as users keep them, for tests that run commands end to end. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { loadMnistLike } from '../../src/io/idx.js';
import { ROOT } from './models.js';

function idx(dims: readonly number[], data: Uint8Array): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(0x0800 + dims.length, 0);
  for (const [i, d] of dims.entries()) header.writeUInt32BE(d, 4 + 4 * i);
  return gzipSync(Buffer.concat([header, data]));
}

/**
 * A Fashion-MNIST folder (IDX, train and test splits) of the first `n` shipped demo images each:
 * what `fashion-mnist:DIR` reads, in a fraction of a second.
 */
export function tinyFashionMnist(n = 64): string {
  const demo = loadMnistLike(join(ROOT, 'data/fashion-mnist-demo'), 'test');
  const dir = mkdtempSync(join(tmpdir(), 'xbar-fmnist-'));
  const plane = demo.rows * demo.cols;
  for (const split of ['train', 't10k']) {
    writeFileSync(
      join(dir, `${split}-images-idx3-ubyte.gz`),
      idx([n, demo.rows, demo.cols], demo.images.subarray(0, n * plane)),
    );
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte.gz`), idx([n], demo.labels.subarray(0, n)));
  }
  return dir;
}

/**
 * `tinyFashionMnist(n)` with its labels replaced by `labels` (each split): accuracy on it is the
 * agreement with whatever made the labels (a model's own predictions).
 */
export function relabelledFashionMnist(n: number, labels: ArrayLike<number>): string {
  const dir = tinyFashionMnist(n);
  const bytes = Uint8Array.from({ length: n }, (_, i) => labels[i]!);
  for (const split of ['train', 't10k'])
    writeFileSync(join(dir, `${split}-labels-idx1-ubyte.gz`), idx([n], bytes));
  return dir;
}
