/**
 * Layers and losses built from primitives. They have no gradient rules of their own:
 * autodiff goes through the primitives they are made of.
 */
import { hostArray } from './ndarray.js';
import { GraphError } from './shape.js';
import { apply, constant, type Tensor } from './tensor.js';

/** x·W + b with W stored [in, out]. x: (..., in) → (..., out) */
export function linear(x: Tensor, w: Tensor, b?: Tensor): Tensor {
  const y = x.matmul(w);
  return b ? y.add(b) : y;
}

/** GELU, exact (x·Φ(x)) or with the tanh approximation. @see arXiv:1606.08415 */
export const gelu = (x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor =>
  apply('gelu', [x], { approximate });

/** LayerNorm over the last axis. @see arXiv:1607.06450 */
export const layerNorm = (x: Tensor, weight: Tensor, bias: Tensor, eps = 1e-5): Tensor =>
  apply('layerNorm', [x, weight, bias], { eps });

/** One-hot float32 rows of `labels` (int32, any shape) over `classes`. labels: (...) → (..., C) */
export function oneHot(labels: Tensor, classes: number): Tensor {
  const range = constant(
    hostArray(
      'int32',
      [classes],
      Int32Array.from({ length: classes }, (_, i) => i),
    ),
  );
  return labels
    .reshape([...labels.shape, 1])
    .equal(range)
    .cast('float32');
}

/**
 * Mean cross-entropy of logits (N, C) against int32 labels (N), with optional label
 * smoothing ε (target = (1 − ε)·onehot + ε/C).
 */
export function crossEntropy(logits: Tensor, labels: Tensor, smoothing = 0): Tensor {
  const [n, c] = logits.shape as [number, number];
  if (logits.rank !== 2 || labels.rank !== 1 || labels.shape[0] !== n) {
    throw new GraphError(
      'crossEntropy',
      `logits [${logits.shape}] and labels [${labels.shape}] must be [N, C] and [N]`,
    );
  }
  const target = oneHot(labels, c)
    .mul(1 - smoothing)
    .add(smoothing / c);
  return target.mul(logits.logSoftmax(-1)).sum().div(-n);
}

export const mse = (a: Tensor, b: Tensor): Tensor => a.sub(b).pow(2).mean();
