/**
 * BERT and RoBERTa sequence classifiers (HF BertForSequenceClassification,
 * RobertaForSequenceClassification). Post-norm encoder. Position ids are computed on the
 * host (`positionIds`), as RoBERTa's depend on padding.
 * Legend: B batch, T tokens, D hidden, V vocabulary.
 */
import { z } from 'zod';
import { type HostArray, hostArray } from '../graph/ndarray.js';
import { layerNorm } from '../graph/nn.js';
import { fmtShape } from '../graph/shape.js';
import { input, type Tensor } from '../graph/tensor.js';
import { InputError } from '../util/errors.js';
import { parseWith } from '../util/validate.js';
import { architectureOf, type BaseConfig, baseConfig, encoderFields, positiveIntSchema } from './config.js';
import { encoder, type Matmuls } from './encoder.js';
import type { ExtraLayer, ModelFamily } from './family.js';
import { type LayerTensorNames, layerWeights, type ParamStore } from './params.js';
import { stackWeights } from './variants.js';

export interface BertConfig extends BaseConfig {
  family: 'bert';
  modelType: 'bert' | 'roberta';
  vocabSize: number;
  maxPositions: number;
  typeVocabSize: number;
  padTokenId: number;
  regression: boolean;
}

const BertJson = z
  .object({
    model_type: z.enum(['bert', 'roberta']),
    ...encoderFields,
    vocab_size: positiveIntSchema,
    max_position_embeddings: positiveIntSchema,
    type_vocab_size: positiveIntSchema,
    pad_token_id: z.number().int().min(0),
    position_embedding_type: z.literal('absolute').optional(),
    problem_type: z.enum(['single_label_classification', 'regression']).nullable().optional(),
  })
  .loose();

const ARCHITECTURES = ['BertForSequenceClassification', 'RobertaForSequenceClassification'];

/** HF's defaults of the fields a config.json may omit. */
const defaults = (padTokenId: number) => ({
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  pad_token_id: padTokenId,
});

/** The additive mask value HF uses for masked keys (float32's most negative finite value). */
const MASK_MIN = -3.4028234663852886e38;

/** Tokens a sequence may have: RoBERTa's positions start after the padding index. */
const maxTokens = (c: BertConfig): number =>
  c.maxPositions - (c.modelType === 'roberta' ? c.padTokenId + 1 : 0);

/** The standard size, as HF configures it. */
const size = (type: 'bert' | 'roberta', extra: Record<string, unknown>) => ({
  model_type: type,
  hidden_size: 768,
  num_attention_heads: 12,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_labels: 2,
  ...extra,
});

/** RoBERTa's vocabulary, positions and token types, as HF configures roberta-base and -large. */
const ROBERTA = {
  vocab_size: 50265,
  max_position_embeddings: 514,
  type_vocab_size: 1,
  pad_token_id: 1,
  layer_norm_eps: 1e-5,
};

/** The large sizes' encoder (bert-large-uncased, roberta-large). */
const LARGE = { hidden_size: 1024, num_attention_heads: 16, intermediate_size: 4096, num_hidden_layers: 24 };

export const bert: ModelFamily<BertConfig> = {
  modelTypes: { bert: defaults(0), roberta: defaults(1) },
  parse(json, file) {
    const j = parseWith(BertJson, json, file);
    const fallback =
      j.model_type === 'bert' ? 'BertForSequenceClassification' : 'RobertaForSequenceClassification';
    const architecture = architectureOf(j, fallback, ARCHITECTURES, file);
    const base = baseConfig(j, file);
    return {
      family: 'bert',
      modelType: j.model_type,
      architecture,
      ...base,
      vocabSize: j.vocab_size,
      maxPositions: j.max_position_embeddings,
      typeVocabSize: j.type_vocab_size,
      padTokenId: j.pad_token_id,
      regression: j.problem_type === 'regression' || (j.problem_type == null && base.labels.length === 1),
    };
  },
  toHf: (c) => ({
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositions,
    type_vocab_size: c.typeVocabSize,
    pad_token_id: c.padTokenId,
    position_embedding_type: 'absolute',
    problem_type: c.regression ? 'regression' : 'single_label_classification',
  }),
  build(c, s, m, shape) {
    const t = shape.seqLen ?? 128;
    if (t > maxTokens(c)) {
      throw new InputError(`seqLen ${t} exceeds the ${c.maxPositions} positions of this model`);
    }
    return buildBert(c, s, m, shape.batch, t);
  },
  unused: [/position_ids$/, /^cls\./, /^lm_head\./, /^roberta\.pooler\./],
  input: (c) => ({ kind: 'text', maxTokens: maxTokens(c), regression: c.regression }),
  feeds(c, x) {
    const ids = x.input_ids;
    if (ids?.shape.length !== 2)
      throw new InputError(
        `input_ids must be int32 [batch, tokens], got ${ids ? fmtShape(ids.shape) : 'nothing'}`,
      );
    const [b, t] = ids.shape as [number, number];
    const like = (name: 'attention_mask' | 'token_type_ids', fill: number): HostArray => {
      const v = x[name];
      if (!v) return hostArray('int32', [b, t], new Int32Array(b * t).fill(fill));
      if (v.shape[0] !== b || v.shape[1] !== t)
        throw new InputError(`${name} is ${fmtShape(v.shape)}, input_ids is ${fmtShape(ids.shape)}`);
      return v;
    };
    const idData = ids.data as Int32Array;
    for (const v of idData) {
      if (v < 0 || v >= c.vocabSize)
        throw new InputError(`input_ids: token id ${v} is outside the vocabulary 0..${c.vocabSize - 1}`);
    }
    const types = like('token_type_ids', 0);
    for (const v of types.data as Int32Array) {
      if (v < 0 || v >= c.typeVocabSize)
        throw new InputError(`token_type_ids: ${v} is outside 0..${c.typeVocabSize - 1}`);
    }
    const feeds = {
      input_ids: ids,
      attention_mask: like('attention_mask', 1),
      token_type_ids: types,
      position_ids: hostArray('int32', [b, t], positionIds(c, idData, t)),
    };
    return { feeds, shape: { batch: b, seqLen: t } };
  },
  shape(c) {
    const head = (name: string, out: number): ExtraLayer => ({ name, in: c.hidden, out, tokens: 1 });
    const [pooler, classifier] = headNames(c);
    return {
      tokens: 128,
      preNorm: false,
      patchEmbedding: null,
      classifier: [head(pooler, c.hidden), head(classifier, c.labels.length)],
    };
  },
  sizes: {
    'bert-base': size('bert', { vocab_size: 30522 }),
    'roberta-base': size('roberta', ROBERTA),
    'bert-large': size('bert', { vocab_size: 30522, ...LARGE }),
    'roberta-large': size('roberta', { ...ROBERTA, ...LARGE }),
  },
};

/** The heads' products by checkpoint name (the graph's and the cost model's): pooler, classifier. */
const headNames = (c: BertConfig): [string, string] =>
  c.modelType === 'roberta'
    ? ['classifier.dense', 'classifier.out_proj']
    : ['bert.pooler.dense', 'classifier'];

/** Where the checkpoint keeps a layer's tensors. */
const LAYER_TENSORS: LayerTensorNames = {
  query: 'attention.self.query',
  key: 'attention.self.key',
  value: 'attention.self.value',
  output: 'attention.output.dense',
  norm1: 'attention.output.LayerNorm',
  ffnIn: 'intermediate.dense',
  ffnOut: 'output.dense',
  norm2: 'output.LayerNorm',
};

/**
 * The classifier graph. input_ids, attention_mask, token_type_ids, position_ids: (B,T) int32
 * → logits (B, labels), or (B, 1) scores for regression.
 */
function buildBert(c: BertConfig, s: ParamStore, m: Matmuls, batch: number, seqLen: number) {
  const [b, t, d] = [batch, seqLen, c.hidden];
  const root = c.modelType;
  const inputs = {
    input_ids: input('input_ids', [b, t], 'int32'),
    attention_mask: input('attention_mask', [b, t], 'int32'),
    token_type_ids: input('token_type_ids', [b, t], 'int32'),
    position_ids: input('position_ids', [b, t], 'int32'),
  };
  const e = `${root}.embeddings`;
  const emb = s
    .tensor(`${e}.word_embeddings.weight`, [c.vocabSize, d])
    .gather(inputs.input_ids)
    .add(s.tensor(`${e}.position_embeddings.weight`, [c.maxPositions, d]).gather(inputs.position_ids))
    .add(s.tensor(`${e}.token_type_embeddings.weight`, [c.typeVocabSize, d]).gather(inputs.token_type_ids));
  const x = layerNorm(
    emb,
    s.tensor(`${e}.LayerNorm.weight`, [d], 'ones'),
    s.tensor(`${e}.LayerNorm.bias`, [d], 'zeros'),
    c.layerNormEps,
  );
  // (1 − mask)·min added to the scores of padded keys: (B,T) → (B,1,1,T)
  const mask = inputs.attention_mask.cast('float32').neg().add(1).mul(MASK_MIN).reshape([b, 1, 1, t]);
  const v = c.variants ?? {};
  const layers = stackWeights(c.layers, v, (i) =>
    layerWeights(s, `${root}.encoder.layer.${i}`, c, LAYER_TENSORS),
  );
  const h = encoder(m, x, layers, { ...c, preNorm: false }, mask, v);
  const first = h.slice(1, 0, 1).reshape([b, d]);
  const labels = c.labels.length;
  const dense = (name: string, x: Tensor, out: number) =>
    m.linear(name, x, s.linear(`${name}.weight`, out, d), s.tensor(`${name}.bias`, [out], 'zeros'));
  const [pooler, classifier] = headNames(c);
  return { inputs, logits: dense(classifier, dense(pooler, first, d).tanh(), labels) };
}

/**
 * Position ids for a batch of token ids [B·T]: 0..T−1 for BERT; for RoBERTa, padding_idx + the
 * running count of non-pad tokens (pad tokens keep padding_idx), as HF computes them.
 */
function positionIds(c: BertConfig, inputIds: Int32Array, seqLen: number): Int32Array {
  const out = new Int32Array(inputIds.length);
  for (let r = 0; r < inputIds.length / seqLen; r++) {
    let count = 0;
    for (let j = 0; j < seqLen; j++) {
      const k = r * seqLen + j;
      if (c.modelType === 'bert') out[k] = j;
      else out[k] = inputIds[k] === c.padTokenId ? c.padTokenId : c.padTokenId + ++count;
    }
  }
  return out;
}
