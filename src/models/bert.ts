/**
 * BERT and RoBERTa sequence classifiers (HF BertForSequenceClassification,
 * RobertaForSequenceClassification). Post-norm encoder. Position ids are computed on the
 * host (`positionIds`), as RoBERTa's depend on padding.
 * Legend: B batch, T tokens, D hidden, V vocabulary.
 */
import { layerNorm } from '../graph/nn.js';
import { input, type Tensor } from '../graph/tensor.js';
import type { BertConfig } from './config.js';
import { type Dense, encoder, type LayerWeights, type Matmuls, type Norm } from './encoder.js';
import type { ParamStore } from './params.js';
import { encoderPlan, stackWeights } from './variants.js';

/** The additive mask value HF uses for masked keys (float32's most negative finite value). */
export const MASK_MIN = -3.4028234663852886e38;

export const bertPrefix = (c: BertConfig): string => c.modelType;

/** Tensors a BERT/RoBERTa checkpoint may hold that the classifier does not use. */
export const BERT_UNUSED = [/position_ids$/, /^cls\./, /^lm_head\./, /^roberta\.pooler\./];

/** A layer's weights, asked of the store only when the graph uses them (a reuse encoder has no Q/K/V). */
function layerWeights(c: BertConfig, s: ParamStore, p: string): LayerWeights {
  const d = c.hidden;
  const dense = (name: string, out: number, inp: number): Dense => ({
    weight: s.linear(`${p}.${name}.weight`, out, inp),
    bias: s.tensor(`${p}.${name}.bias`, [out], 'zeros'),
  });
  const norm = (name: string): Norm => ({
    weight: s.tensor(`${p}.${name}.weight`, [d], 'ones'),
    bias: s.tensor(`${p}.${name}.bias`, [d], 'zeros'),
  });
  return {
    get query() {
      return dense('attention.self.query', d, d);
    },
    get key() {
      return dense('attention.self.key', d, d);
    },
    get value() {
      return dense('attention.self.value', d, d);
    },
    get output() {
      return dense('attention.output.dense', d, d);
    },
    get norm1() {
      return norm('attention.output.LayerNorm');
    },
    get ffnIn() {
      return dense('intermediate.dense', c.ffn, d);
    },
    get ffnOut() {
      return dense('output.dense', d, c.ffn);
    },
    get norm2() {
      return norm('output.LayerNorm');
    },
    get transformation() {
      return {
        norm: norm('attention.transformation.layernorm'),
        dense: dense('attention.transformation.dense', d, d),
      };
    },
  };
}

/**
 * The classifier graph. input_ids, attention_mask, token_type_ids, position_ids: (B,T) int32
 * → logits (B, labels), or (B, 1) scores for regression.
 */
export function buildBert(c: BertConfig, s: ParamStore, m: Matmuls, batch: number, seqLen: number) {
  const [b, t, d] = [batch, seqLen, c.hidden];
  const root = bertPrefix(c);
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
  const layers = stackWeights(c.layers, v, (i) => layerWeights(c, s, `${root}.encoder.layer.${i}`));
  const h = encoder(m, x, layers, { ...c, preNorm: false }, mask, encoderPlan(v));
  const first = h.slice(1, 0, 1).reshape([b, d]);
  const labels = c.labels.length;
  const dense = (name: string, x: Tensor, out: number) =>
    m.linear(name, x, s.linear(`${name}.weight`, out, d), s.tensor(`${name}.bias`, [out], 'zeros'));
  const logits =
    c.modelType === 'roberta'
      ? dense('classifier.out_proj', dense('classifier.dense', first, d).tanh(), labels)
      : dense('classifier', dense(`${root}.pooler.dense`, first, d).tanh(), labels);
  return { inputs, logits };
}

/**
 * Position ids for a batch of token ids [B·T]: 0..T−1 for BERT; for RoBERTa, padding_idx + the
 * running count of non-pad tokens (pad tokens keep padding_idx), as HF computes them.
 */
export function positionIds(c: BertConfig, inputIds: Int32Array, seqLen: number): Int32Array {
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
