/**
 * Model families and loading. A Model is a config plus its weights; `graph()` builds the
 * forward graph for a batch shape, with crossbar products computed by `m` (exact by default,
 * the analog model's when it rewrites them).
 */

import type { Tensor } from '../graph/tensor.js';
import { readCheckpoint } from '../io/safetensors.js';
import { Rng } from '../util/math.js';
import { BERT_UNUSED, buildBert } from './bert.js';
import {
  type BertConfig,
  loadModelConfig,
  type ModelConfig,
  parseModelConfig,
  type VitConfig,
} from './config.js';
import { digital, type Matmuls } from './encoder.js';
import { ParamStore, type TensorSource } from './params.js';
import { buildVit, VIT_UNUSED } from './vit.js';

export interface ModelGraph {
  /** Named inputs: pixel_values, or input_ids / attention_mask / token_type_ids / position_ids. */
  inputs: Record<string, Tensor>;
  /** (B, labels) */
  logits: Tensor;
}

export interface GraphShape {
  batch: number;
  /** Tokens per sequence (text models). */
  seqLen?: number;
}

export class Model {
  constructor(
    readonly config: ModelConfig,
    readonly store: ParamStore,
  ) {}

  /** The forward graph for a batch shape; params are shared between graphs of one model. */
  graph(shape: GraphShape, m: Matmuls = digital): ModelGraph {
    if (this.config.family === 'vit') return buildVit(this.config, this.store, m, shape.batch);
    const t = shape.seqLen ?? 128;
    if (
      t >
      this.config.maxPositions - (this.config.modelType === 'roberta' ? this.config.padTokenId + 1 : 0)
    ) {
      throw new RangeError(`seqLen ${t} exceeds the ${this.config.maxPositions} positions of this model`);
    }
    return buildBert(this.config, this.store, m, shape.batch, t);
  }

  /** Every weight, in the order the model uses them. */
  params(): Tensor[] {
    return this.store.params();
  }

  /** The products `Matmuls.linear` computes (the layers a crossbar may hold), in graph order, with their weights [in, out]. */
  linearLayers(): { name: string; weight: Tensor }[] {
    const found: { name: string; weight: Tensor }[] = [];
    this.graph(
      { batch: 1, seqLen: 8 },
      {
        ...digital,
        linear: (name, x, w, b) => {
          found.push({ name, weight: w });
          return digital.linear(name, x, w, b);
        },
      },
    );
    return found;
  }
}

function unused(c: ModelConfig): RegExp[] {
  return c.family === 'vit' ? VIT_UNUSED : BERT_UNUSED;
}

/** HF renamed LayerNorm gamma/beta to weight/bias; older checkpoints still use them. */
const modernName = (n: string): string =>
  n.replace(/LayerNorm\.gamma$/, 'LayerNorm.weight').replace(/LayerNorm\.beta$/, 'LayerNorm.bias');

/** Loads a Hugging Face model folder (config.json + model.safetensors, or sharded). */
export function loadModel(dir: string): Model {
  const config = loadModelConfig(dir);
  const ckpt = readCheckpoint(dir);
  const byName = new Map([...ckpt.tensors.entries()].map(([n, t]) => [modernName(n), t]));
  const source: TensorSource = {
    file: ckpt.file,
    names: () => [...byName.keys()],
    get: (n) => byName.get(n)?.toHost(),
  };
  const model = new Model(config, new ParamStore(source));
  model.graph({ batch: 1, seqLen: 8 });
  model.store.check(unused(config));
  return model;
}

/** A model of a config with random weights (N(0, std²)), for cost and speed work; std 0 gives zeros fast. */
export function randomModel(config: ModelConfig, seed = 0, std = 0.02): Model {
  const model = new Model(config, new ParamStore({ rng: new Rng(seed), std }));
  model.graph({ batch: 1, seqLen: 8 });
  return model;
}

const vit = (name: string, type: 'vit' | 'deit', hidden: number, heads: number, arch: string) =>
  parseModelConfig(
    {
      model_type: type,
      architectures: [arch],
      hidden_size: hidden,
      num_attention_heads: heads,
      intermediate_size: 4 * hidden,
      num_hidden_layers: 12,
      num_labels: 1000,
      layer_norm_eps: 1e-12,
    },
    `(built-in ${name})`,
  ) as VitConfig;

const bert = (name: string, type: 'bert' | 'roberta', extra: Record<string, unknown>) =>
  parseModelConfig(
    {
      model_type: type,
      hidden_size: 768,
      num_attention_heads: 12,
      intermediate_size: 3072,
      num_hidden_layers: 12,
      num_labels: 2,
      ...extra,
    },
    `(built-in ${name})`,
  ) as BertConfig;

/** The standard sizes, as HF configures them (shapes only; weights are random). */
export const MODEL_SIZES: Record<string, ModelConfig> = {
  'deit-t': vit('deit-t', 'deit', 192, 3, 'DeiTForImageClassificationWithTeacher'),
  'deit-s': vit('deit-s', 'deit', 384, 6, 'DeiTForImageClassificationWithTeacher'),
  'deit-b': vit('deit-b', 'deit', 768, 12, 'DeiTForImageClassificationWithTeacher'),
  'vit-b': vit('vit-b', 'vit', 768, 12, 'ViTForImageClassification'),
  'bert-base': bert('bert-base', 'bert', { vocab_size: 30522 }),
  'roberta-base': bert('roberta-base', 'roberta', {
    vocab_size: 50265,
    max_position_embeddings: 514,
    type_vocab_size: 1,
    pad_token_id: 1,
    layer_norm_eps: 1e-5,
  }),
};
