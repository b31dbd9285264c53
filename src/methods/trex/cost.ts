/** The cost model's view of a model variant: reuse encoders, shared weights, tokens per encoder. */
import type { ResolvedSpec } from '../../analog/resolve.js';
import { type CostOptions, type CostReport, cost } from '../../cost/cost.js';
import { modelShape } from '../../cost/shape.js';
import type { ModelConfig } from '../../models/index.js';
import { reuseEncoders, tokensPerEncoder, type Variants } from '../../models/variants.js';

/** Cost options for `variants` of a model with `layers` encoders and `tokens` tokens. */
export function variantCostOptions(v: Variants, layers: number, tokens: number): CostOptions {
  const shared = Object.keys(v.shareWeights ?? {}).map(Number);
  return {
    reuse: reuseEncoders(v),
    ...(shared.length ? { sharedWeights: shared } : {}),
    ...(v.tokenKeep ? { tokensPerLayer: tokensPerEncoder(v, layers, tokens) } : {}),
  };
}

/** Energy, delay and area of a model (with its variants) on `hw`; text models at `seqLen` tokens. */
export function modelCost(
  c: ModelConfig,
  hw: ResolvedSpec,
  o: { seqLen?: number; extra?: CostOptions } = {},
): CostReport {
  const shape = modelShape(c, o.seqLen === undefined ? {} : { tokens: o.seqLen });
  return cost(shape, hw, { ...o.extra, ...variantCostOptions(c.variants ?? {}, c.layers, shape.tokens) });
}
