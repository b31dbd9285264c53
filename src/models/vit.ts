/**
 * ViT and DeiT image classifiers (HF ViTForImageClassification, DeiTForImageClassification,
 * DeiTForImageClassificationWithTeacher). Pre-norm encoder; the patch embedding is a
 * linear map of flattened patches (a conv with stride = kernel).
 * Legend: B batch, C channels, P patch, N patches, K = N + 1 (+1 with a distillation token).
 */
import { layerNorm } from '../graph/nn.js';
import { concat, input, type Tensor } from '../graph/tensor.js';
import type { VitConfig } from './config.js';
import { type Dense, encoder, type LayerWeights, type Matmuls, type Norm } from './encoder.js';
import { PATCH_EMBEDDING } from './layer-names.js';
import type { ParamStore } from './params.js';
import { encoderPlan, stackWeights } from './variants.js';

export const vitPrefix = (c: VitConfig): string => (c.modelType === 'deit' ? 'deit' : 'vit');

/** Tensors a ViT checkpoint may hold that the classifier does not use. */
export const VIT_UNUSED = [/position_ids$/, /\.pooler\./];

/** A layer's weights, asked of the store only when the graph uses them (a reuse encoder has no Q/K/V). */
function layerWeights(c: VitConfig, s: ParamStore, p: string): LayerWeights {
  const d = c.hidden;
  const dense = (name: string, out: number, inp: number, bias = true): Dense => ({
    weight: s.linear(`${p}.${name}.weight`, out, inp),
    ...(bias ? { bias: s.tensor(`${p}.${name}.bias`, [out], 'zeros') } : {}),
  });
  const norm = (name: string): Norm => ({
    weight: s.tensor(`${p}.${name}.weight`, [d], 'ones'),
    bias: s.tensor(`${p}.${name}.bias`, [d], 'zeros'),
  });
  return {
    get query() {
      return dense('attention.attention.query', d, d, c.qkvBias);
    },
    get key() {
      return dense('attention.attention.key', d, d, c.qkvBias);
    },
    get value() {
      return dense('attention.attention.value', d, d, c.qkvBias);
    },
    get output() {
      return dense('attention.output.dense', d, d);
    },
    get norm1() {
      return norm('layernorm_before');
    },
    get ffnIn() {
      return dense('intermediate.dense', c.ffn, d);
    },
    get ffnOut() {
      return dense('output.dense', d, c.ffn);
    },
    get norm2() {
      return norm('layernorm_after');
    },
    get transformation() {
      return {
        norm: norm('attention.transformation.layernorm'),
        dense: dense('attention.transformation.dense', d, d),
      };
    },
  };
}

/** The classifier graph. pixel_values: (B,C,H,W) float32 → logits (B, labels) */
export function buildVit(c: VitConfig, s: ParamStore, m: Matmuls, batch: number) {
  const root = vitPrefix(c);
  const [b, d, p, ch] = [batch, c.hidden, c.patchSize, c.channels];
  const g = c.imageSize / p;
  const n = g * g;
  const distilled = c.modelType === 'deit';
  const pixels = input('pixel_values', [b, ch, c.imageSize, c.imageSize]);

  // (B,C,H,W) → (B,N,C·P·P), patch-major as the conv kernel [D,C,P,P] is laid out
  const patches = pixels
    .reshape([b, ch, g, p, g, p])
    .transpose([0, 2, 4, 1, 3, 5])
    .reshape([b, n, ch * p * p]);
  const e = `${root}.embeddings`;
  const wPatch = s.linear(`${e}.patch_embeddings.projection.weight`, d, ch * p * p, [d, ch, p, p]);
  const bPatch = s.tensor(`${e}.patch_embeddings.projection.bias`, [d], 'zeros');
  const tokens = [s.tensor(`${e}.cls_token`, [1, 1, d]).expand([b, 1, d])];
  if (distilled) tokens.push(s.tensor(`${e}.distillation_token`, [1, 1, d]).expand([b, 1, d]));
  tokens.push(m.linear(PATCH_EMBEDDING, patches, wPatch, bPatch));
  const k = n + tokens.length - 1;
  const x = concat(tokens, 1).add(s.tensor(`${e}.position_embeddings`, [1, k, d]));

  const v = c.variants ?? {};
  const layers = stackWeights(c.layers, v, (i) => layerWeights(c, s, `${root}.encoder.layer.${i}`));
  const h = encoder(m, x, layers, { ...c, preNorm: true }, undefined, encoderPlan(v));
  const lnW = s.tensor(`${root}.layernorm.weight`, [d], 'ones');
  const lnB = s.tensor(`${root}.layernorm.bias`, [d], 'zeros');
  const normed = layerNorm(h, lnW, lnB, c.layerNormEps);

  const token = (i: number) => normed.slice(1, i, i + 1).reshape([b, d]);
  const labels = c.labels.length;
  const head = (name: string, t: Tensor) =>
    m.linear(name, t, s.linear(`${name}.weight`, labels, d), s.tensor(`${name}.bias`, [labels], 'zeros'));
  const logits =
    c.architecture === 'DeiTForImageClassificationWithTeacher'
      ? head('cls_classifier', token(0))
          .add(head('distillation_classifier', token(1)))
          .mul(0.5)
      : head('classifier', token(0));
  return { inputs: { pixel_values: pixels }, logits };
}
