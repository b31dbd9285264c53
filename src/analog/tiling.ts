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

/**
 * Inputs x [N, in] → [N, R, rows], vector first as they lie in memory: a reshape when equal
 * tiles cover the input, else one gather.
 */
export function vectorTiles(x: Tensor, tiles: readonly Span[], rows: number): Tensor {
  const [n, inDim] = x.shape as [number, number];
  const nR = tiles.length;
  if (nR * rows === inDim) return x.reshape([n, nR, rows]);
  const padded = concat([x, constant(hostArray('float32', [n, 1]))], 1);
  return padded.gather(tileIndex(tiles, rows, inDim), 1).reshape([n, nR, rows]);
}

/** [(…), N, R, k] → [(…), R, N, k]: tile first, as the batched products need; a reshape when N or R is 1. */
export function tilesFirst(t: Tensor): Tensor {
  const r = t.rank;
  const [n, nR] = [t.shape[r - 3]!, t.shape[r - 2]!];
  if (n === 1 || nR === 1) return t.reshape([...t.shape.slice(0, r - 3), nR, n, t.shape[r - 1]!]);
  const perm = [...t.shape.keys()];
  [perm[r - 3], perm[r - 2]] = [r - 2, r - 3];
  return t.transpose(perm);
}

/** Inputs x [N, in] → [R, N, rows]. */
export function tileInputs(x: Tensor, tiles: readonly Span[], rows: number): Tensor {
  return tilesFirst(vectorTiles(x, tiles, rows));
}

/** Weights w [in, out] (x·w) → [R, rows, out], the rows each tile holds. */
export function tileWeights(w: Tensor, tiles: readonly Span[], rows: number): Tensor {
  const [inDim, outDim] = w.shape as [number, number];
  const nR = tiles.length;
  if (nR * rows === inDim) return w.reshape([nR, rows, outDim]);
  const padded = concat([w, constant(hostArray('float32', [1, outDim]))], 0);
  return padded.gather(tileIndex(tiles, rows, inDim), 0).reshape([nR, rows, outDim]);
}
