/**
 * Hidden dropout for training, as BERT's `hidden_dropout_prob`: on the output of the attention
 * projection and of the second MLP matrix, before each residual add. It wraps the model's
 * crossbar products (`Matmuls`), so it composes with the analog rewrite and leaves the model
 * code untouched; inference graphs never see it.
 */

import { seedFor } from '../analog/noise.js';
import { randomUniform, type Tensor } from '../graph/tensor.js';
import type { Matmuls } from '../models/encoder.js';

/** Where BERT and ViT apply hidden dropout: outputs feeding a residual. */
const BEFORE_RESIDUAL = /\.(output|ffnOut)$/;

/** Inverted dropout: zero each value with probability p, scale the rest by 1/(1−p). Fresh mask every run. */
export function dropout(x: Tensor, p: number, seed: number): Tensor {
  if (!(p >= 0 && p < 1)) throw new RangeError(`dropout ${p}: use a probability in [0, 1)`);
  if (p === 0) return x;
  // floor(u + 1 − p) is 1 with probability 1 − p
  const keep = randomUniform(x.shape, { seed })
    .add(1 - p)
    .floor();
  return x.mul(keep.mul(1 / (1 - p)));
}

/** `m` with hidden dropout p after every residual-feeding linear layer; each layer has its own stream. */
export function withDropout(m: Matmuls, p: number, seed: number): Matmuls {
  if (p === 0) return m;
  return {
    ...m,
    linear: (name, x, w, b) => {
      const y = m.linear(name, x, w, b);
      return BEFORE_RESIDUAL.test(name) ? dropout(y, p, seedFor(seed, `dropout:${name}`)) : y;
    },
  };
}
