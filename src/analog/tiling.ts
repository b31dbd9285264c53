/**
 * Row tiling as graph ops: a layer's inputs and weights laid out per crossbar row tile, so one
 * batched product computes every tile, split so that its GEMMs share ONNX Runtime's threads
 * evenly. Tiles shorter than `rows` are zero-padded (zeros add nothing to a column's current).
 */
import { hostArray } from '../graph/ndarray.js';
import { broadcastShapes, numel } from '../graph/shape.js';
import { concat, constant, type Tensor } from '../graph/tensor.js';
import { nativeThreads } from '../runtime/native.js';
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

/** Fewest rows each product of a split keeps (a GEMM of fewer rows loses more than balance gains). */
const MIN_SPLIT_ROWS = 64;

/**
 * The share of `threads` kept busy when ONNX Runtime runs `products` equal GEMMs: its batched
 * MatMul gives each GEMM ⌈threads/products⌉ parts (1 when there are at least as many GEMMs as
 * threads) and runs the parts in rounds of `threads`, so 3 GEMMs on 2 threads take 2 rounds.
 */
export function batchBalance(products: number, threads: number): number {
  const parts = products * Math.max(1, Math.ceil(threads / products));
  return parts / (threads * Math.ceil(parts / threads));
}

/**
 * a [(…), N, K] · b [(…), K, C] for tiles, as a batched matmul whose GEMMs share out evenly: ONNX
 * Runtime gives each GEMM of a batch its own threads, so the 3 row tiles of a 1536-input layer
 * would run on 2 threads in 2 rounds, the second half idle. The N rows are split into s blocks,
 * [(…), s, N/s, K]·[(…), 1, K, C]: s is the divisor of N (blocks of at least MIN_SPLIT_ROWS rows)
 * that keeps most threads busy (`batchBalance`), the smallest such. Each output is the same
 * K-long sum whatever s is, so the numbers are too.
 */
export function tiledMatmul(a: Tensor, b: Tensor, threads = nativeThreads()): Tensor {
  if (a.rank < 3 || b.rank < 3) return a.matmul(b);
  const n = a.shape.at(-2)!;
  const k = a.shape.at(-1)!;
  const products = numel(broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2)));
  let s = 1;
  for (let d = 2; d <= n / MIN_SPLIT_ROWS; d++)
    if (n % d === 0 && batchBalance(products * d, threads) > batchBalance(products * s, threads)) s = d;
  if (s === 1) return a.matmul(b);
  const y = a
    .reshape([...a.shape.slice(0, -2), s, n / s, k])
    .matmul(b.reshape([...b.shape.slice(0, -2), 1, ...b.shape.slice(-2)]));
  return y.reshape([...y.shape.slice(0, -3), n, y.shape.at(-1)!]);
}
