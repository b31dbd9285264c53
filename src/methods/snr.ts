/**
 * ClipFormer's SNR of an attention block: 10·log10(‖X‖² / ‖X − X̃‖²), X = softmax(QKᵀ)V of the
 * ideal (floating-point) network, X̃ the block's output in the network under test, each from its
 * own network's Q, K, V (the paper's definition: the SNR counts the error of every layer up to the
 * block, not only that of its attention crossbars). The ideal network is built into the same
 * graph, from the same inputs and weights. ‖·‖² sums over every element of every evaluated
 * example; the sums per batch are extra outputs of the model's graph (computed in ONNX Runtime),
 * accumulated here.
 */
import type { EvalData } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import type { HostArray } from '../graph/ndarray.js';
import type { Tensor } from '../graph/tensor.js';
import { digital, type Matmuls } from '../models/encoder.js';
import type { Model } from '../models/index.js';
import { encoderPrefix, encoderProduct } from '../models/layer-names.js';
import type { Provider } from '../runtime/session.js';

export interface BlockSnr {
  /** Attention block, e.g. `layer.0`. */
  block: string;
  /** ‖X‖² and ‖X − X̃‖² summed over the examples seen. */
  signal: number;
  noise: number;
  /** 10·log10(signal / noise), Infinity when noise is 0. */
  snrDb: number;
}

export const snrDb = (signal: number, noise: number): number => 10 * Math.log10(signal / noise);

/** The encoder of an attention product name (`layer.3.scores` → 3). */
const blockOf = (name: string): number => encoderProduct(name)!.encoder;

export class AttentionSnr {
  /** X̃ of each block of the graph built last. */
  private readonly tested = new Map<number, Tensor>();
  private readonly sums = new Map<number, { signal: number; noise: number }>();

  constructor(private readonly inner: Matmuls) {}

  /** The products to build the model with: `inner`'s, with a tap on every attention block's output. */
  matmuls(): Matmuls {
    return {
      ...this.inner,
      mix: (name, p, v) => {
        const x = this.inner.mix(name, p, v);
        this.tested.set(blockOf(name), x);
        return x;
      },
    };
  }

  /**
   * The graph outputs of the model built last (call after building it): `ideal` builds the same
   * forward pass again with the products it is given, which are floating point.
   */
  outputs(ideal: (m: Matmuls) => void): Record<string, Tensor> {
    const taps: Record<string, Tensor> = {};
    ideal({
      ...digital,
      mix: (name, p, v) => {
        const x = digital.mix(name, p, v);
        const block = blockOf(name);
        const tested = this.tested.get(block);
        if (!tested) throw new Error(`attention SNR: ${name} is not in the network under test`);
        const e = x.sub(tested);
        taps[`snr.${block}.signal`] = x.mul(x).sum();
        taps[`snr.${block}.noise`] = e.mul(e).sum();
        return x;
      },
    });
    this.tested.clear();
    return taps;
  }

  /** Adds one batch's outputs (the `snr.*` entries of a run). */
  add(outs: Record<string, HostArray>): void {
    for (const [k, v] of Object.entries(outs)) {
      const m = /^snr\.(\d+)\.(signal|noise)$/.exec(k);
      if (!m) continue;
      const s = this.sums.get(Number(m[1])) ?? { signal: 0, noise: 0 };
      s[m[2] as 'signal' | 'noise'] += (v.data as Float32Array)[0]!;
      this.sums.set(Number(m[1]), s);
    }
  }

  /** SNR per block, in model order. */
  result(): BlockSnr[] {
    return [...this.sums.entries()]
      .sort((a, b) => a[0] - b[0])
      .map(([i, s]) => ({ block: encoderPrefix(i), ...s, snrDb: snrDb(s.signal, s.noise) }));
  }
}

export interface SnrRun {
  /** The model's main metric on the data, under the same products. */
  metric: string;
  value: number;
  blocks: BlockSnr[];
  /** Predicted class (or score) per example. */
  predictions: Float64Array;
  seconds: number;
}

/** One pass over `data` with `matmuls` (e.g. an AnalogModel's): the metric and the SNR per block. */
export async function measureSnr(
  model: Model,
  data: EvalData,
  matmuls: Matmuls,
  o: { batch?: number; provider?: Provider } = {},
): Promise<SnrRun> {
  const snr = new AttentionSnr(matmuls);
  const r = await evaluate(model, data, {
    ...o,
    matmuls: snr.matmuls(),
    fresh: true,
    outputs: (shape) => snr.outputs((m) => model.graph(shape, m)),
    onOutputs: (outs) => snr.add(outs),
  });
  return {
    metric: r.metric,
    value: r.value,
    blocks: snr.result(),
    predictions: r.predictions,
    seconds: r.seconds,
  };
}
