/**
 * What a model family is: one descriptor (vit.ts, bert.ts) saying which config.json types it
 * reads, how it builds its graph, what it reads and what static products it maps outside the
 * encoder stack. The registry (index.ts FAMILIES) is an array of them; nothing else branches
 * on a family.
 */
import type { HostArray } from '../graph/ndarray.js';
import type { Tensor } from '../graph/tensor.js';
import type { Matmuls } from './encoder.js';
import type { ParamStore } from './params.js';

/** A batch as data gives it; a family completes and checks it (`feeds`). */
export interface ModelInputs {
  /** (B, C, H, W) float32 */
  pixel_values?: HostArray;
  /** (B, T) int32 */
  input_ids?: HostArray;
  attention_mask?: HostArray;
  token_type_ids?: HostArray;
}

export interface GraphShape {
  batch: number;
  /** Tokens per sequence (text models). */
  seqLen?: number;
}

export interface ModelGraph {
  /** Named inputs: pixel_values, or input_ids / attention_mask / token_type_ids / position_ids. */
  inputs: Record<string, Tensor>;
  /** (B, labels) */
  logits: Tensor;
}

/** What a model reads: images of one size, or token ids up to a length. */
export type ModelInput =
  | { kind: 'image'; size: number; channels: number }
  | { kind: 'text'; maxTokens: number; regression: boolean };

/** A static product outside the encoder stack (patch embedding, classifier heads), as the cost model sees it. */
export interface ExtraLayer {
  name: string;
  in: number;
  out: number;
  /** Input vectors per inference. */
  tokens: number;
}

/** The shape facts of a config the cost model needs beyond the encoder sizes. */
export interface FamilyShape {
  /** Tokens each encoder sees by default. */
  tokens: number;
  /** LayerNorm before attention and MLP (ViT) or after each residual (BERT). */
  preNorm: boolean;
  patchEmbedding: ExtraLayer | null;
  classifier: ExtraLayer[];
}

/** A model family; `C` is its normalised config. */
export interface ModelFamily<C> {
  /** HF `model_type`s it reads, each with HF's defaults of the fields a config.json may omit. */
  modelTypes: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
  /** A config.json object, with its type's defaults, normalised; errors name `file` and the field. */
  parse(json: Record<string, unknown>, file: string): C;
  /** The family's own fields in config.json form. */
  toHf(c: C): Record<string, unknown>;
  /** The forward graph of a batch shape, with crossbar products computed by `m`. */
  build(c: C, s: ParamStore, m: Matmuls, shape: GraphShape): ModelGraph;
  /** Checkpoint tensors the classifier does not use. */
  unused: readonly RegExp[];
  input(c: C): ModelInput;
  /** A batch completed with the graph's other inputs and checked against the config. */
  feeds(c: C, x: ModelInputs): { feeds: Record<string, HostArray>; shape: GraphShape };
  shape(c: C): FamilyShape;
  /** Built-in sizes (config.json objects; shapes only, weights random). */
  sizes: Readonly<Record<string, Record<string, unknown>>>;
}
