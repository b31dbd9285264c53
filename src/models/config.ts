/**
 * The Hugging Face `config.json` fields every family shares (encoder sizes, activation, labels,
 * variants), read and validated once at load. Every field that changes the math is read;
 * fields we cannot honour are rejected.
 */
import { z } from 'zod';
import { InputError } from '../util/errors.js';
import { parseVariants, type Variants, variantsToHf } from './variants.js';

/** Activation functions by their HF names. */
const HIDDEN_ACTS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'] as const;
export type HiddenAct = (typeof HIDDEN_ACTS)[number];

export const positiveIntSchema = z.number().int().positive();

/** The shared fields of a family's config.json schema. */
export const encoderFields = {
  hidden_size: positiveIntSchema,
  num_hidden_layers: positiveIntSchema,
  num_attention_heads: positiveIntSchema,
  intermediate_size: positiveIntSchema,
  hidden_act: z.enum(HIDDEN_ACTS),
  layer_norm_eps: z.number().positive(),
  id2label: z.record(z.string(), z.string()).optional(),
  num_labels: positiveIntSchema.optional(),
  architectures: z.array(z.string()).optional(),
};
type EncoderJson = z.infer<z.ZodObject<typeof encoderFields>> & Record<string, unknown>;

export interface BaseConfig {
  /** HF model_type. */
  modelType: string;
  /** HF architecture (class name) the checkpoint was saved from. */
  architecture: string;
  hidden: number;
  layers: number;
  heads: number;
  ffn: number;
  act: HiddenAct;
  layerNormEps: number;
  /** Class names in index order. */
  labels: string[];
  /** TReX reuse, weight sharing, token pruning (variants.ts); absent for the plain model. */
  variants?: Variants;
}

/** The checkpoint's architecture (`fallback` when it names none), if it is one of `allowed`. */
export function architectureOf(j: EncoderJson, fallback: string, allowed: readonly string[], file: string) {
  const architecture = j.architectures?.[0] ?? fallback;
  if (!allowed.includes(architecture)) {
    throw new InputError(file, [
      `architectures: '${architecture}' is not supported; use one of ${allowed.join(', ')}`,
    ]);
  }
  return architecture;
}

function labelList(j: EncoderJson, file: string): string[] {
  if (j.id2label) {
    const n = Object.keys(j.id2label).length;
    return Array.from({ length: n }, (_, i) => {
      const name = j.id2label![String(i)];
      if (name === undefined) throw new InputError(file, [`id2label: has ${n} entries but no key "${i}"`]);
      return name;
    });
  }
  return Array.from({ length: j.num_labels ?? 2 }, (_, i) => `LABEL_${i}`);
}

/** The shared fields of a parsed config.json, normalised. */
export function baseConfig(j: EncoderJson, file: string): Omit<BaseConfig, 'modelType' | 'architecture'> {
  if (j.hidden_size % j.num_attention_heads !== 0) {
    throw new InputError(file, [
      `hidden_size: ${j.hidden_size} is not a multiple of num_attention_heads ${j.num_attention_heads}`,
    ]);
  }
  const variants = parseVariants(j, j.num_hidden_layers, file);
  return {
    ...(Object.keys(variants).length ? { variants } : {}),
    hidden: j.hidden_size,
    layers: j.num_hidden_layers,
    heads: j.num_attention_heads,
    ffn: j.intermediate_size,
    act: j.hidden_act,
    layerNormEps: j.layer_norm_eps,
    labels: labelList(j, file),
  };
}

/** The shared fields back in config.json form. */
export function baseConfigToHf(c: BaseConfig): Record<string, unknown> {
  return {
    architectures: [c.architecture],
    model_type: c.modelType,
    hidden_size: c.hidden,
    num_hidden_layers: c.layers,
    num_attention_heads: c.heads,
    intermediate_size: c.ffn,
    hidden_act: c.act,
    layer_norm_eps: c.layerNormEps,
    id2label: Object.fromEntries(c.labels.map((l, i) => [String(i), l])),
    label2id: Object.fromEntries(c.labels.map((l, i) => [l, i])),
    ...variantsToHf(c.variants ?? {}),
  };
}
