/**
 * Row tiling as graph ops: a layer's inputs and weights laid out per crossbar row tile, so one
 * batched product computes every tile. Tiles shorter than `rows` are zero-padded (zeros add
 * nothing to a column's current).
 */
import { hostArray } from '../graph/ndarray.js';
import { concat, constant, type Tensor } from '../graph/tensor.js';
import type { Span } from './program.js';

/** Row indices of every tile laid out in blocks of `rows`; `pad` marks padding. */
function tileIndex(tiles: readonly Span[], rows: number, pad: number): Tensor {
  const idx = new Int32Array(tiles.length * rows).fill(pad);
  tiles.forEach((t, r) => {
    for (let i = 0; i < t.size; i++) idx[r * rows + i] = t.start + i;
  });
  return constant(hostArray('int32', [idx.length], idx));
}

/** Inputs x [N, in] → [R, N, rows]: a reshape when equal tiles cover the input, else one gather. */
export function tileInputs(x: Tensor, tiles: readonly Span[], rows: number): Tensor {
  const [n, inDim] = x.shape as [number, number];
  const nR = tiles.length;
  if (nR === 1 && rows === inDim) return x.reshape([1, n, inDim]);
  if (nR * rows === inDim) return x.reshape([n, nR, rows]).transpose([1, 0, 2]);
  const padded = concat([x, constant(hostArray('float32', [n, 1]))], 1);
  return padded
    .gather(tileIndex(tiles, rows, inDim), 1)
    .reshape([n, nR, rows])
    .transpose([1, 0, 2]);
}

/** Weights w [in, out] (x·w) → [R, rows, out], the rows each tile holds. */
export function tileWeights(w: Tensor, tiles: readonly Span[], rows: number): Tensor {
  const [inDim, outDim] = w.shape as [number, number];
  const nR = tiles.length;
  if (nR * rows === inDim) return w.reshape([nR, rows, outDim]);
  const padded = concat([w, constant(hostArray('float32', [1, outDim]))], 0);
  return padded.gather(tileIndex(tiles, rows, inDim), 0).reshape([nR, rows, outDim]);
}
