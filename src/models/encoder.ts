/**
 * The transformer encoder shared by ViT/DeiT (pre-norm) and BERT/RoBERTa (post-norm).
 * Every product that can live on a crossbar goes through a `Matmuls` object, so the analog
 * model can replace them without touching the model code.
 * Legend: B batch, T tokens, D hidden, H heads, E = D/H head dim, F ffn.
 */
import { hostArray } from '../graph/ndarray.js';
import { gelu, layerNorm } from '../graph/nn.js';
import { param, type Tensor } from '../graph/tensor.js';
import type { Rng } from '../util/math.js';
import type { HiddenAct } from './config.js';

/** The crossbar-eligible products of a transformer. */
export interface Matmuls {
  /** x·W + b for a static weight W [in, out] named `name`. x: (..., in) → (..., out) */
  linear(name: string, x: Tensor, w: Tensor, b?: Tensor): Tensor;
  /** Q·Kᵀ with K written at run time. q: (B,H,T,E), kT: (B,H,E,T) → (B,H,T,T) */
  scores(name: string, q: Tensor, kT: Tensor): Tensor;
  /** S·V with V written at run time. s: (B,H,T,T), v: (B,H,T,E) → (B,H,T,E) */
  mix(name: string, s: Tensor, v: Tensor): Tensor;
}

/** Exact floating-point products. */
export const digital: Matmuls = {
  linear: (_, x, w, b) => (b ? x.matmul(w).add(b) : x.matmul(w)),
  scores: (_, q, kT) => q.matmul(kT),
  mix: (_, s, v) => s.matmul(v),
};

export interface EncoderConfig {
  hidden: number;
  heads: number;
  ffn: number;
  layerNormEps: number;
  act: HiddenAct;
  /** LayerNorm before attention and MLP (ViT) or after the residual (BERT). */
  preNorm: boolean;
}

export interface Dense {
  weight: Tensor;
  bias?: Tensor;
}
export interface Norm {
  weight: Tensor;
  bias: Tensor;
}
export interface LayerWeights {
  query: Dense;
  key: Dense;
  value: Dense;
  output: Dense;
  /** Pre-norm: before attention; post-norm: after attention's residual. */
  norm1: Norm;
  ffnIn: Dense;
  ffnOut: Dense;
  norm2: Norm;
}

/** The hidden activation by its HF name (gelu_new, gelu_fast and gelu_pytorch_tanh are the tanh form). */
export function activation(x: Tensor, act: HiddenAct): Tensor {
  if (act === 'relu') return x.maximum(0);
  return gelu(x, act === 'gelu' ? 'none' : 'tanh');
}

/** Multi-head self-attention. x: (B,T,D), mask: additive (B,1,1,T) or none → (B,T,D) */
export function attention(
  m: Matmuls,
  p: string,
  x: Tensor,
  w: LayerWeights,
  cfg: EncoderConfig,
  mask?: Tensor,
): Tensor {
  const [b, t, d] = x.shape as [number, number, number];
  const h = cfg.heads;
  const e = d / h;
  const heads = (y: Tensor) => y.reshape([b, t, h, e]).transpose([0, 2, 1, 3]); // (B,H,T,E)
  // scaling q (T·D values) is cheaper than scaling the scores (T·T per head)
  const q = heads(m.linear(`${p}.query`, x, w.query.weight, w.query.bias).mul(1 / Math.sqrt(e)));
  const kT = m.linear(`${p}.key`, x, w.key.weight, w.key.bias).reshape([b, t, h, e]).transpose([0, 2, 3, 1]);
  const v = heads(m.linear(`${p}.value`, x, w.value.weight, w.value.bias));
  let s = m.scores(`${p}.scores`, q, kT);
  if (mask) s = s.add(mask);
  const ctx = m.mix(`${p}.mix`, s.softmax(-1), v).transpose([0, 2, 1, 3]).reshape([b, t, d]);
  return m.linear(`${p}.output`, ctx, w.output.weight, w.output.bias);
}

/** One encoder layer. x: (B,T,D) → (B,T,D) */
export function encoderLayer(
  m: Matmuls,
  p: string,
  x: Tensor,
  w: LayerWeights,
  cfg: EncoderConfig,
  mask?: Tensor,
): Tensor {
  const eps = cfg.layerNormEps;
  const act = (y: Tensor) => activation(y, cfg.act);
  const mlp = (y: Tensor) =>
    m.linear(
      `${p}.ffnOut`,
      act(m.linear(`${p}.ffnIn`, y, w.ffnIn.weight, w.ffnIn.bias)),
      w.ffnOut.weight,
      w.ffnOut.bias,
    );
  if (cfg.preNorm) {
    const h = x.add(attention(m, p, layerNorm(x, w.norm1.weight, w.norm1.bias, eps), w, cfg, mask));
    return h.add(mlp(layerNorm(h, w.norm2.weight, w.norm2.bias, eps)));
  }
  const h = layerNorm(x.add(attention(m, p, x, w, cfg, mask)), w.norm1.weight, w.norm1.bias, eps);
  return layerNorm(h.add(mlp(h)), w.norm2.weight, w.norm2.bias, eps);
}

/** A stack of encoder layers. x: (B,T,D) → (B,T,D) */
export function encoder(
  m: Matmuls,
  x: Tensor,
  layers: readonly LayerWeights[],
  cfg: EncoderConfig,
  mask?: Tensor,
): Tensor {
  return layers.reduce((h, w, i) => encoderLayer(m, `layer.${i}`, h, w, cfg, mask), x);
}

/** Multiply-accumulates of one encoder layer for T tokens (the MAC count of cost and benchmarks). */
export function encoderLayerMacs(cfg: Pick<EncoderConfig, 'hidden' | 'ffn'>, tokens: number): number {
  const { hidden: d, ffn: f } = cfg;
  return tokens * (4 * d * d + 2 * d * f) + 2 * tokens * tokens * d;
}

/** Random weights for one layer (N(0, std²) matrices, unit LayerNorm), as params named `${p}.…`. */
export function randomLayerWeights(cfg: EncoderConfig, p: string, rng: Rng, std = 0.02): LayerWeights {
  const { hidden: d, ffn: f } = cfg;
  const mat = (name: string, rows: number, cols: number) =>
    param(
      `${p}.${name}`,
      hostArray('float32', [rows, cols], rng.fillNormal(new Float32Array(rows * cols), 0, std)),
    );
  const vec = (name: string, n: number, v = 0) =>
    param(`${p}.${name}`, hostArray('float32', [n], new Float32Array(n).fill(v)));
  const dense = (name: string, rows: number, cols: number): Dense => ({
    weight: mat(`${name}.weight`, rows, cols),
    bias: vec(`${name}.bias`, cols),
  });
  const norm = (name: string): Norm => ({
    weight: vec(`${name}.weight`, d, 1),
    bias: vec(`${name}.bias`, d),
  });
  return {
    query: dense('query', d, d),
    key: dense('key', d, d),
    value: dense('value', d, d),
    output: dense('output', d, d),
    norm1: norm('norm1'),
    ffnIn: dense('ffnIn', d, f),
    ffnOut: dense('ffnOut', f, d),
    norm2: norm('norm2'),
  };
}
