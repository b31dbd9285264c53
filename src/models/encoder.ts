/**
 * The transformer encoder shared by ViT/DeiT (pre-norm) and BERT/RoBERTa (post-norm).
 * Every product that can live on a crossbar goes through a `Matmuls` object, so the analog
 * model can replace them without touching the model code.
 * Legend: B batch, T tokens, D hidden, H heads, E = D/H head dim, F ffn.
 */
import { hostArray } from '../graph/ndarray.js';
import { gelu, layerNorm } from '../graph/nn.js';
import { constant, param, type Tensor } from '../graph/tensor.js';
import type { Rng } from '../util/math.js';
import type { HiddenAct } from './config.js';
import { layerName } from './layer-names.js';
import { keptTokens, type Variants } from './variants.js';

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
/** TReX's transformation block: LayerNorm → d×d linear → GELU. */
export interface Transformation {
  norm: Norm;
  dense: Dense;
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
  /** Reuse encoders only (TReX). */
  transformation?: Transformation;
}

/** The hidden activation by its HF name (gelu_new, gelu_fast and gelu_pytorch_tanh are the tanh form). */
export function activation(x: Tensor, act: HiddenAct): Tensor {
  if (act === 'relu') return x.maximum(0);
  return gelu(x, act === 'gelu' ? 'none' : 'tanh');
}

/**
 * Multi-head self-attention up to the heads' concatenated output (before the projection).
 * x: (B,T,D), mask: additive (B,1,1,T) or none → context (B,T,D), probabilities (B,H,T,T)
 */
function attentionContext(
  m: Matmuls,
  i: number,
  x: Tensor,
  w: LayerWeights,
  cfg: EncoderConfig,
  mask?: Tensor,
): { context: Tensor; probs: Tensor } {
  const [b, t, d] = x.shape as [number, number, number];
  const h = cfg.heads;
  const e = d / h;
  const heads = (y: Tensor) => y.reshape([b, t, h, e]).transpose([0, 2, 1, 3]); // (B,H,T,E)
  // scaling q (T·D values) is cheaper than scaling the scores (T·T per head)
  const q = heads(m.linear(layerName(i, 'query'), x, w.query.weight, w.query.bias).mul(1 / Math.sqrt(e)));
  const kT = m
    .linear(layerName(i, 'key'), x, w.key.weight, w.key.bias)
    .reshape([b, t, h, e])
    .transpose([0, 2, 3, 1]);
  const v = heads(m.linear(layerName(i, 'value'), x, w.value.weight, w.value.bias));
  let s = m.scores(layerName(i, 'scores'), q, kT);
  if (mask) s = s.add(mask);
  const probs = s.softmax(-1);
  const context = m.mix(layerName(i, 'mix'), probs, v).transpose([0, 2, 1, 3]).reshape([b, t, d]);
  return { context, probs };
}

/**
 * TReX's transformation block, LayerNorm → d×d linear → GELU, applied to a reused attention
 * output; its linear is a static crossbar layer, encoder `i`'s `transformation`. (B,T,D) → (B,T,D)
 */
function transformationBlock(m: Matmuls, i: number, context: Tensor, tb: Transformation, eps: number) {
  const normed = layerNorm(context, tb.norm.weight, tb.norm.bias, eps);
  return gelu(m.linear(layerName(i, 'transformation'), normed, tb.dense.weight, tb.dense.bias));
}

/**
 * One encoder layer, which either computes its attention or (TReX) takes `reused`, an earlier
 * encoder's attention output, through its transformation block. x: (B,T,D) → out (B,T,D);
 * `context` is what fed the projection (this layer's attention output, for later reuse).
 */
function encoderStep(
  m: Matmuls,
  i: number,
  x: Tensor,
  w: LayerWeights,
  cfg: EncoderConfig,
  mask?: Tensor,
  reused?: Tensor,
): { out: Tensor; context: Tensor; probs: Tensor | null } {
  const eps = cfg.layerNormEps;
  const act = (y: Tensor) => activation(y, cfg.act);
  const mlp = (y: Tensor) =>
    m.linear(
      layerName(i, 'ffnOut'),
      act(m.linear(layerName(i, 'ffnIn'), y, w.ffnIn.weight, w.ffnIn.bias)),
      w.ffnOut.weight,
      w.ffnOut.bias,
    );
  let context: Tensor;
  let probs: Tensor | null = null;
  if (reused) {
    if (!w.transformation)
      throw new Error(`encoder ${i}: a reuse encoder needs transformation-block weights`);
    context = transformationBlock(m, i, reused, w.transformation, eps);
  } else {
    const attnIn = cfg.preNorm ? layerNorm(x, w.norm1.weight, w.norm1.bias, eps) : x;
    ({ context, probs } = attentionContext(m, i, attnIn, w, cfg, mask));
  }
  const attn = m.linear(layerName(i, 'output'), context, w.output.weight, w.output.bias);
  if (cfg.preNorm) {
    const h = x.add(attn);
    return { out: h.add(mlp(layerNorm(h, w.norm2.weight, w.norm2.bias, eps))), context, probs };
  }
  const h = layerNorm(x.add(attn), w.norm1.weight, w.norm1.bias, eps);
  return { out: layerNorm(h.add(mlp(h)), w.norm2.weight, w.norm2.bias, eps), context, probs };
}

/**
 * Keeps the class token and the `k − 1` other tokens the class token attends to most (mean
 * over heads), ordered by that attention; the additive mask follows. Selection is a one-hot
 * (B,k,T) matrix built from ranks (no gradient), so gradients reach the kept tokens.
 * x: (B,T,D), probs: (B,H,T,T), mask: (B,1,1,T) → x (B,k,D), mask (B,1,1,k)
 */
export function pruneTokens(
  x: Tensor,
  probs: Tensor,
  k: number,
  mask?: Tensor,
): { x: Tensor; mask?: Tensor } {
  const [b, t] = x.shape as [number, number, number];
  const h = probs.shape[1]!;
  // class-token attention (B,T); the class token itself gets 2 (> any probability) so it stays first
  const first = new Float32Array(t);
  first[0] = 2;
  const score = probs
    .slice(2, 0, 1)
    .sum(1)
    .mul(1 / h)
    .reshape([b, t])
    .add(constant(hostArray('float32', [t], first)))
    .detach();
  // rank_i = #{j: s_j > s_i} + #{j < i: s_j = s_i}: distinct ranks 0..T−1, ties by position
  const si = score.reshape([b, t, 1]);
  const sj = score.reshape([b, 1, t]);
  const lower = new Float32Array(t * t);
  for (let i = 0; i < t; i++) for (let j = 0; j < i; j++) lower[i * t + j] = 1;
  const rank = sj
    .greater(si)
    .cast('float32')
    .add(
      sj
        .equal(si)
        .cast('float32')
        .mul(constant(hostArray('float32', [t, t], lower))),
    )
    .sum(2); // (B,T)
  const slots = constant(
    hostArray(
      'float32',
      [k, 1],
      Float32Array.from({ length: k }, (_, r) => r),
    ),
  );
  const select = rank.reshape([b, 1, t]).equal(slots).cast('float32').detach(); // (B,k,T)
  const kept = select.matmul(x);
  if (!mask) return { x: kept };
  // one 1 per row: the product copies each kept token's mask value exactly
  return { x: kept, mask: select.matmul(mask.reshape([b, t, 1])).reshape([b, 1, 1, k]) };
}

/**
 * A stack of encoder layers, with the variant's attention reuse and token pruning (sharing is
 * in `layers`). x: (B,T,D) → (B,T',D) (T' < T after token pruning)
 */
export function encoder(
  m: Matmuls,
  x: Tensor,
  layers: readonly LayerWeights[],
  cfg: EncoderConfig,
  mask?: Tensor,
  v: Variants = {},
): Tensor {
  const contexts: Tensor[] = [];
  let h = x;
  let msk = mask;
  layers.forEach((w, i) => {
    const src = v.reuse?.[i];
    if (src !== undefined && !(src >= 0 && src < i))
      throw new Error(`encoder ${i} cannot reuse encoder ${src}`);
    const step = encoderStep(m, i, h, w, cfg, msk, src === undefined ? undefined : contexts[src]);
    contexts.push(step.context);
    h = step.out;
    const keep = v.tokenKeep?.[i];
    if (keep !== undefined) {
      if (!step.probs) throw new Error(`encoder ${i} prunes tokens but computes no attention`);
      const k = Math.min(keptTokens(h.shape[1]!, keep), h.shape[1]!);
      ({ x: h, mask: msk } = pruneTokens(h, step.probs, k, msk));
    }
  });
  return h;
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
