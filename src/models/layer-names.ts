/**
 * The names of a transformer's crossbar-eligible products, made and parsed here only. An
 * encoder's products are `layer.<i>.<product>` (`layer.3.query`, `layer.3.scores`), the patch
 * embedding is `embeddings.patch`, and classifier heads keep their checkpoint names
 * (`classifier`, `bert.pooler.dense`, `distillation_classifier`). Hardware overrides glob over
 * these names, and learned ranges are stored under them.
 */
import { InputError } from '../util/errors.js';

/** What each product of an encoder layer is, as a hardware spec maps it. */
const PRODUCT_KINDS = {
  query: 'qkv',
  key: 'qkv',
  value: 'qkv',
  scores: 'attention',
  mix: 'attention',
  output: 'projection',
  // TReX's transformation block feeds the projection and is mapped with it
  transformation: 'projection',
  ffnIn: 'ffn',
  ffnOut: 'ffn',
} as const;

export type EncoderProduct = keyof typeof PRODUCT_KINDS;
export const ENCODER_PRODUCTS = Object.keys(PRODUCT_KINDS) as EncoderProduct[];

/** Kinds of the products with static weights: the groups `mapped` puts on crossbars or not. */
export type LayerKind = 'qkv' | 'projection' | 'ffn' | 'patchEmbedding' | 'classifier';

export type LayerName =
  | { kind: (typeof PRODUCT_KINDS)[EncoderProduct]; encoder: number; product: EncoderProduct }
  | { kind: 'patchEmbedding' }
  | { kind: 'classifier'; head: string };

export const PATCH_EMBEDDING = 'embeddings.patch';

/** The prefix of encoder `i`'s products, `layer.<i>` (an attention block in SNR reports). */
export const encoderPrefix = (i: number): string => `layer.${i}`;

export const layerName = (i: number, product: EncoderProduct): string => `${encoderPrefix(i)}.${product}`;

const ENCODER = /^layer\.(0|[1-9]\d*)\.([A-Za-z]+)$/;
const HEAD = /^[A-Za-z_]\w*(\.\w+)*$/;

/** Splits a product name into kind, encoder and product; throws on a name no model gives. */
export function parseLayerName(name: string): LayerName {
  const m = ENCODER.exec(name);
  if (m && m[2]! in PRODUCT_KINDS) {
    const product = m[2] as EncoderProduct;
    return { kind: PRODUCT_KINDS[product], encoder: Number(m[1]), product };
  }
  if (name === PATCH_EMBEDDING) return { kind: 'patchEmbedding' };
  if (HEAD.test(name) && !/^(layer|embeddings)\./.test(name)) return { kind: 'classifier', head: name };
  throw new InputError(
    `'${name}' is not a layer name; use layer.<i>.<product> (products ${ENCODER_PRODUCTS.join(', ')}), ` +
      `${PATCH_EMBEDDING}, or a classifier head's checkpoint name`,
  );
}

/** The kind of a product with static weights; throws for attention's QKᵀ and S·V. */
export function layerKind(name: string): LayerKind {
  const { kind } = parseLayerName(name);
  if (kind === 'attention') throw new InputError(`'${name}' is an attention product, not a static layer`);
  return kind;
}

/** The encoder index and product of an encoder's product name, or null (patch embedding, heads). */
export function encoderProduct(name: string): { encoder: number; product: EncoderProduct } | null {
  const p = parseLayerName(name);
  return 'encoder' in p ? p : null;
}
