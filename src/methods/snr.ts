/**
 * ClipFormer's SNR of an attention block: 10·log10(‖X‖² / ‖X − X̃‖²), X = softmax(QKᵀ)V exact,
 * X̃ the same product with QKᵀ and S·V on the (analog) products under test. Both are built
 * from the same Q, K, V (the block's own inputs), so the SNR isolates the attention
 * crossbars from the error of the layers before them. ‖·‖² sums over every element of every
 * evaluated example; the sums per batch are extra outputs of the model's graph (computed
 * in ONNX Runtime), accumulated here.
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
  private readonly pending = new Map<number, { exact: Tensor; analog: Tensor }>();
  private taps: Record<string, Tensor> = {};
  private readonly sums = new Map<number, { signal: number; noise: number }>();

  constructor(private readonly inner: Matmuls) {}

  /** The products to build the model with: `inner`'s, with taps on every attention block. */
  matmuls(): Matmuls {
    return {
      linear: this.inner.linear,
      scores: (name, q, kT) => {
        const analog = this.inner.scores(name, q, kT);
        this.pending.set(blockOf(name), { exact: digital.scores(name, q, kT), analog });
        return analog;
      },
      mix: (name, p, v) => {
        const analog = this.inner.mix(name, p, v);
        const block = blockOf(name);
        const s = this.pending.get(block);
        if (!s) throw new Error(`attention SNR: ${name} has no scores product before it`);
        // p = softmax(S̃ + mask); the exact probabilities softmax(S + mask) are p·exp(S − S̃),
        // renormalised, so a mask added between the products needs no special case
        const d = s.exact.sub(s.analog);
        const w = p.mul(d.sub(d.max(-1, true)).exp());
        const exactP = w.div(w.sum(-1, true).maximum(1e-30));
        const x = digital.mix(name, exactP, v);
        const e = x.sub(analog);
        this.taps[`snr.${block}.signal`] = x.mul(x).sum();
        this.taps[`snr.${block}.noise`] = e.mul(e).sum();
        return analog;
      },
    };
  }

  /** The graph outputs of the model built last (call after building it). */
  outputs(): Record<string, Tensor> {
    const t = this.taps;
    this.taps = {};
    return t;
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
    outputs: () => snr.outputs(),
    onOutputs: (outs) => snr.add(outs),
  });
  return { metric: r.metric, value: r.value, blocks: snr.result(), seconds: r.seconds };
}
