/**
 * Hugging Face `config.json` → typed model configs, normalised once at load. Every field
 * that changes the math is read and validated; fields we cannot honour are rejected.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { InputError } from '../util/errors.js';
import { parseWith } from '../util/validate.js';
import { parseVariants, type Variants, variantsToHf } from './variants.js';

/** Activation functions by their HF names. */
export const HIDDEN_ACTS = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'relu'] as const;
export type HiddenAct = (typeof HIDDEN_ACTS)[number];

export const VIT_ARCHITECTURES = [
  'ViTForImageClassification',
  'DeiTForImageClassification',
  'DeiTForImageClassificationWithTeacher',
] as const;
export const BERT_ARCHITECTURES = [
  'BertForSequenceClassification',
  'RobertaForSequenceClassification',
] as const;

const pos = z.number().int().positive();
const labels = {
  id2label: z.record(z.string(), z.string()).optional(),
  num_labels: pos.optional(),
  architectures: z.array(z.string()).optional(),
};
const encoderFields = {
  hidden_size: pos,
  num_hidden_layers: pos,
  num_attention_heads: pos,
  intermediate_size: pos,
  hidden_act: z.enum(HIDDEN_ACTS),
  layer_norm_eps: z.number().positive(),
};

const VitJson = z
  .object({
    model_type: z.enum(['vit', 'deit']),
    ...encoderFields,
    image_size: pos,
    patch_size: pos,
    num_channels: pos,
    qkv_bias: z.boolean(),
    ...labels,
  })
  .loose();

const BertJson = z
  .object({
    model_type: z.enum(['bert', 'roberta']),
    ...encoderFields,
    vocab_size: pos,
    max_position_embeddings: pos,
    type_vocab_size: pos,
    pad_token_id: z.number().int().min(0),
    position_embedding_type: z.literal('absolute').optional(),
    problem_type: z.enum(['single_label_classification', 'regression']).nullable().optional(),
    ...labels,
  })
  .loose();

interface Common {
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
export interface VitConfig extends Common {
  family: 'vit';
  modelType: 'vit' | 'deit';
  imageSize: number;
  patchSize: number;
  channels: number;
  qkvBias: boolean;
}
export interface BertConfig extends Common {
  family: 'bert';
  modelType: 'bert' | 'roberta';
  vocabSize: number;
  maxPositions: number;
  typeVocabSize: number;
  padTokenId: number;
  regression: boolean;
}
export type ModelConfig = VitConfig | BertConfig;

/** HF defaults of the fields configs may omit, per model_type. */
const DEFAULTS: Record<string, Record<string, unknown>> = {
  vit: {
    hidden_act: 'gelu',
    layer_norm_eps: 1e-12,
    image_size: 224,
    patch_size: 16,
    num_channels: 3,
    qkv_bias: true,
  },
  deit: {
    hidden_act: 'gelu',
    layer_norm_eps: 1e-12,
    image_size: 224,
    patch_size: 16,
    num_channels: 3,
    qkv_bias: true,
  },
  bert: {
    hidden_act: 'gelu',
    layer_norm_eps: 1e-12,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    pad_token_id: 0,
  },
  roberta: {
    hidden_act: 'gelu',
    layer_norm_eps: 1e-12,
    max_position_embeddings: 512,
    type_vocab_size: 2,
    pad_token_id: 1,
  },
};

function labelList(j: z.infer<typeof VitJson> | z.infer<typeof BertJson>, file: string): string[] {
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

/** Normalises a parsed config.json object (`file` names it in errors). */
export function parseModelConfig(json: unknown, file: string): ModelConfig {
  const type = (json as { model_type?: unknown })?.model_type;
  if (typeof type !== 'string' || !(type in DEFAULTS)) {
    throw new InputError(file, [
      `model_type: ${JSON.stringify(type)} is not supported; xbar reads ${Object.keys(DEFAULTS).join(', ')}`,
    ]);
  }
  const withDefaults = { ...DEFAULTS[type], ...(json as object) };
  const arch = (withDefaults as { architectures?: string[] }).architectures?.[0];
  if (type === 'vit' || type === 'deit') {
    const j = parseWith(VitJson, withDefaults, file);
    const architecture =
      arch ?? (type === 'vit' ? 'ViTForImageClassification' : 'DeiTForImageClassification');
    if (!(VIT_ARCHITECTURES as readonly string[]).includes(architecture)) {
      throw new InputError(file, [
        `architectures: '${architecture}' is not supported; use one of ${VIT_ARCHITECTURES.join(', ')}`,
      ]);
    }
    if (j.image_size % j.patch_size !== 0) {
      throw new InputError(file, [
        `image_size: ${j.image_size} is not a multiple of patch_size ${j.patch_size}`,
      ]);
    }
    return {
      family: 'vit',
      modelType: j.model_type,
      architecture,
      ...common(j, file),
      imageSize: j.image_size,
      patchSize: j.patch_size,
      channels: j.num_channels,
      qkvBias: j.qkv_bias,
    };
  }
  const j = parseWith(BertJson, withDefaults, file);
  const architecture =
    arch ?? (type === 'bert' ? 'BertForSequenceClassification' : 'RobertaForSequenceClassification');
  if (!(BERT_ARCHITECTURES as readonly string[]).includes(architecture)) {
    throw new InputError(file, [
      `architectures: '${architecture}' is not supported; use one of ${BERT_ARCHITECTURES.join(', ')}`,
    ]);
  }
  const labels = labelList(j, file);
  return {
    family: 'bert',
    modelType: j.model_type,
    architecture,
    ...common(j, file),
    vocabSize: j.vocab_size,
    maxPositions: j.max_position_embeddings,
    typeVocabSize: j.type_vocab_size,
    padTokenId: j.pad_token_id,
    regression: j.problem_type === 'regression' || (j.problem_type == null && labels.length === 1),
  };
}

function common(
  j: z.infer<typeof VitJson> | z.infer<typeof BertJson>,
  file: string,
): Omit<Common, 'architecture'> {
  if (j.hidden_size % j.num_attention_heads !== 0) {
    throw new InputError(file, [
      `hidden_size: ${j.hidden_size} is not a multiple of num_attention_heads ${j.num_attention_heads}`,
    ]);
  }
  const variants = parseVariants(j as Record<string, unknown>, j.num_hidden_layers, file);
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

/** Reads and normalises `dir/config.json`. */
export function loadModelConfig(dir: string): ModelConfig {
  const file = join(dir, 'config.json');
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new InputError(file, ['not found: a model folder needs config.json (Hugging Face format)']);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new InputError(file, [`invalid JSON: ${(e as Error).message}`]);
  }
  return parseModelConfig(json, file);
}

/** The config back in HF form (for save_pretrained-compatible folders). */
export function toHfConfig(c: ModelConfig): Record<string, unknown> {
  const base = {
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
  if (c.family === 'vit') {
    return {
      ...base,
      image_size: c.imageSize,
      patch_size: c.patchSize,
      num_channels: c.channels,
      qkv_bias: c.qkvBias,
    };
  }
  return {
    ...base,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    pad_token_id: c.padTokenId,
    position_embedding_type: 'absolute',
    problem_type: c.regression ? 'regression' : 'single_label_classification',
  };
}
