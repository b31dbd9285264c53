/**
 * ViT and DeiT image classifiers (HF ViTForImageClassification, DeiTForImageClassification,
 * DeiTForImageClassificationWithTeacher). Pre-norm encoder; the patch embedding is a
 * linear map of flattened patches (a conv with stride = kernel).
 * Legend: B batch, C channels, P patch, N patches, K = N + 1 (+1 with a distillation token).
 */
import { z } from 'zod';
import { layerNorm } from '../graph/nn.js';
import { fmtShape } from '../graph/shape.js';
import { concat, input, type Tensor } from '../graph/tensor.js';
import { InputError } from '../util/errors.js';
import { parseWith } from '../util/validate.js';
import { architectureOf, type BaseConfig, baseConfig, encoderFields, positiveIntSchema } from './config.js';
import { encoder, type Matmuls } from './encoder.js';
import type { ExtraLayer, ModelFamily } from './family.js';
import { PATCH_EMBEDDING } from './layer-names.js';
import { type LayerTensorNames, layerWeights, type ParamStore } from './params.js';
import { stackWeights } from './variants.js';

export interface VitConfig extends BaseConfig {
  family: 'vit';
  modelType: 'vit' | 'deit';
  imageSize: number;
  patchSize: number;
  channels: number;
  qkvBias: boolean;
}

const VitJson = z
  .object({
    model_type: z.enum(['vit', 'deit']),
    ...encoderFields,
    image_size: positiveIntSchema,
    patch_size: positiveIntSchema,
    num_channels: positiveIntSchema,
    qkv_bias: z.boolean(),
  })
  .loose();

const ARCHITECTURES = [
  'ViTForImageClassification',
  'DeiTForImageClassification',
  'DeiTForImageClassificationWithTeacher',
];

/** HF's defaults of the fields a config.json may omit. */
const DEFAULTS = {
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
  image_size: 224,
  patch_size: 16,
  num_channels: 3,
  qkv_bias: true,
};

/** The classifier heads: DeiT's teacher-distilled model averages two. */
const heads = (c: VitConfig): string[] =>
  c.architecture === 'DeiTForImageClassificationWithTeacher'
    ? ['cls_classifier', 'distillation_classifier']
    : ['classifier'];

/** The standard sizes, as HF configures them. */
const size = (type: 'vit' | 'deit', hidden: number, heads: number, arch: string) => ({
  model_type: type,
  architectures: [arch],
  hidden_size: hidden,
  num_attention_heads: heads,
  intermediate_size: 4 * hidden,
  num_hidden_layers: 12,
  num_labels: 1000,
  layer_norm_eps: 1e-12,
});

export const vit: ModelFamily<VitConfig> = {
  modelTypes: { vit: DEFAULTS, deit: DEFAULTS },
  parse(json, file) {
    const j = parseWith(VitJson, json, file);
    const fallback = j.model_type === 'vit' ? 'ViTForImageClassification' : 'DeiTForImageClassification';
    const architecture = architectureOf(j, fallback, ARCHITECTURES, file);
    if (j.image_size % j.patch_size !== 0) {
      throw new InputError(file, [
        `image_size: ${j.image_size} is not a multiple of patch_size ${j.patch_size}`,
      ]);
    }
    return {
      family: 'vit',
      modelType: j.model_type,
      architecture,
      ...baseConfig(j, file),
      imageSize: j.image_size,
      patchSize: j.patch_size,
      channels: j.num_channels,
      qkvBias: j.qkv_bias,
    };
  },
  toHf: (c) => ({
    image_size: c.imageSize,
    patch_size: c.patchSize,
    num_channels: c.channels,
    qkv_bias: c.qkvBias,
  }),
  build: (c, s, m, shape) => buildVit(c, s, m, shape.batch),
  unused: [/position_ids$/, /\.pooler\./],
  input: (c) => ({ kind: 'image', size: c.imageSize, channels: c.channels }),
  feeds(c, x) {
    const p = x.pixel_values;
    const want = [c.channels, c.imageSize, c.imageSize];
    if (p?.shape.length !== 4 || p.shape.slice(1).some((d, i) => d !== want[i])) {
      throw new InputError(
        `pixel_values must be float32 [batch, ${want.join(', ')}], got ${p ? fmtShape(p.shape) : 'nothing'}`,
      );
    }
    return { feeds: { pixel_values: p }, shape: { batch: p.shape[0]! } };
  },
  shape(c) {
    const patches = (c.imageSize / c.patchSize) ** 2;
    const head = (name: string): ExtraLayer => ({ name, in: c.hidden, out: c.labels.length, tokens: 1 });
    return {
      tokens: patches + (c.modelType === 'deit' ? 2 : 1),
      preNorm: true,
      patchEmbedding: {
        name: PATCH_EMBEDDING,
        in: c.channels * c.patchSize ** 2,
        out: c.hidden,
        tokens: patches,
      },
      classifier: heads(c).map(head),
    };
  },
  sizes: {
    'deit-t': size('deit', 192, 3, 'DeiTForImageClassificationWithTeacher'),
    'deit-s': size('deit', 384, 6, 'DeiTForImageClassificationWithTeacher'),
    'deit-b': size('deit', 768, 12, 'DeiTForImageClassificationWithTeacher'),
    'vit-b': size('vit', 768, 12, 'ViTForImageClassification'),
  },
};

/** Where the checkpoint keeps a layer's tensors. */
const LAYER_TENSORS: LayerTensorNames = {
  query: 'attention.attention.query',
  key: 'attention.attention.key',
  value: 'attention.attention.value',
  output: 'attention.output.dense',
  norm1: 'layernorm_before',
  ffnIn: 'intermediate.dense',
  ffnOut: 'output.dense',
  norm2: 'layernorm_after',
};

/** The classifier graph. pixel_values: (B,C,H,W) float32 → logits (B, labels) */
function buildVit(c: VitConfig, s: ParamStore, m: Matmuls, batch: number) {
  const root = c.modelType;
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
  const layers = stackWeights(c.layers, v, (i) =>
    layerWeights(s, `${root}.encoder.layer.${i}`, c, LAYER_TENSORS, c.qkvBias),
  );
  const h = encoder(m, x, layers, { ...c, preNorm: true }, undefined, v);
  const lnW = s.tensor(`${root}.layernorm.weight`, [d], 'ones');
  const lnB = s.tensor(`${root}.layernorm.bias`, [d], 'zeros');
  const normed = layerNorm(h, lnW, lnB, c.layerNormEps);

  const token = (i: number) => normed.slice(1, i, i + 1).reshape([b, d]);
  const labels = c.labels.length;
  const head = (name: string, t: Tensor) =>
    m.linear(name, t, s.linear(`${name}.weight`, labels, d), s.tensor(`${name}.bias`, [labels], 'zeros'));
  // one head per token: the class token's, and the distillation token's (averaged)
  const out = heads(c).map((name, i) => head(name, token(i)));
  const logits = out.length === 2 ? out[0]!.add(out[1]!).mul(0.5) : out[0]!;
  return { inputs: { pixel_values: pixels }, logits };
}
