/**
 * The shapes the cost model needs from a model: no weights, only sizes and token counts, and no
 * file access (a browser uses them too; shape.ts also reads a model folder's config).
 * Legend: t tokens, d hidden, h heads, e = d/h, f ffn.
 */

import { familyOf, MODEL_SIZES, type ModelConfig } from '../models/families.js';
import type { FamilyShape } from '../models/family.js';
import { PATCH_EMBEDDING } from '../models/layer-names.js';

/** The encoder's sizes and what the family adds (`tokens`: the sequence length t every encoder sees). */
export interface ModelShape extends FamilyShape {
  name: string;
  family: ModelConfig['family'];
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
}

export interface ShapeOptions {
  /** Tokens per sequence; default: patches + class (+ distillation) token, or 128 for text. */
  tokens?: number;
  name?: string;
}

/** The shape of a model config: ViT tokens from image and patch size, BERT from `tokens` (128). */
export function modelShape(c: ModelConfig, o: ShapeOptions = {}): ModelShape {
  const f = familyOf(c).shape(c);
  return {
    name: o.name ?? `${c.modelType}-${c.hidden}`,
    family: c.family,
    layers: c.layers,
    hidden: c.hidden,
    heads: c.heads,
    ffn: c.ffn,
    ...f,
    // keeps its place among the keys of `f` (cost reports print them in this order)
    tokens: o.tokens ?? f.tokens,
  };
}

/**
 * Shapes the cost model knows beyond MODEL_SIZES (no HF config of these ships).
 * LV-ViT-S: Jiang et al., "All Tokens Matter", NeurIPS 2021; reference implementation
 * `lvvit_s`: depth 16, dim 384, 6 heads, MLP ratio 3, 224² input, 16² patches, class token.
 * Its 4-convolution patch stem is modelled as one 768→384 projection; the token-labelling
 * auxiliary head classifies all 196 patch tokens.
 */
export const COST_ONLY_SHAPES: Record<string, ModelShape> = {
  'lv-vit-s': {
    name: 'lv-vit-s',
    family: 'vit',
    layers: 16,
    hidden: 384,
    heads: 6,
    ffn: 1152,
    tokens: 197,
    preNorm: true,
    patchEmbedding: { name: PATCH_EMBEDDING, in: 768, out: 384, tokens: 196 },
    classifier: [
      { name: 'classifier', in: 384, out: 1000, tokens: 1 },
      { name: 'aux_head', in: 384, out: 1000, tokens: 196 },
    ],
  },
};

/** Names `--model` accepts besides a folder. */
export const SHAPE_NAMES = [...Object.keys(MODEL_SIZES), ...Object.keys(COST_ONLY_SHAPES)];

/** The shape of a built-in size or a cost-only shape, by name; undefined for another name. */
export function namedShape(name: string, o: ShapeOptions = {}): ModelShape | undefined {
  const size = MODEL_SIZES[name];
  if (size) return modelShape(size, { name, ...o });
  const only = COST_ONLY_SHAPES[name];
  if (only) return o.tokens === undefined ? only : { ...only, tokens: o.tokens };
  return undefined;
}
