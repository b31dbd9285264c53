/**
 * Logits of a model for a batch of inputs, in ONNX Runtime. Text inputs get HF's defaults
 * (attention mask of ones, token types of zeros) and host-computed position ids.
 */
import { topoSort } from '../graph/autodiff.js';
import { type HostArray, type HostData, hostArray } from '../graph/ndarray.js';
import { fmtShape, numel } from '../graph/shape.js';
import type { Tensor } from '../graph/tensor.js';
import { positionIds } from '../models/bert.js';
import { digital, type Matmuls } from '../models/encoder.js';
import type { Model } from '../models/index.js';
import { compile, type Provider, type RunnableGraph } from '../runtime/session.js';
import { InputError } from '../util/errors.js';

export interface ModelInputs {
  /** (B, C, H, W) float32 */
  pixel_values?: HostArray;
  /** (B, T) int32 */
  input_ids?: HostArray;
  attention_mask?: HostArray;
  token_type_ids?: HostArray;
}

export interface PredictOptions {
  provider?: Provider;
  /**
   * Compile private sessions (random streams start from their seeds) instead of shared ones;
   * `release()` frees them.
   */
  fresh?: boolean;
  /**
   * Embed the params' values in the graph as constants, so that ONNX Runtime pre-packs the
   * weights (5–12 % faster forwards, measured on DeiT-S), for a predictor whose params keep
   * their values while it lives: later changes to a param are not seen. Default: without
   * crossbar products, and with them when `fresh` (a programmed Monte Carlo instance) and the
   * params take at most 256 MiB; shared analog sessions feed the weights, so one session serves
   * every instance.
   */
  bakeParams?: boolean;
  /** How crossbar products are computed (default: exact). */
  matmuls?: Matmuls;
  /** Extra graph outputs, asked for right after each graph is built (e.g. AttentionSnr taps). */
  outputs?: () => Record<string, Tensor>;
  /**
   * Bytes the largest tensor of a run may take (default 8 MiB: smaller pieces also run faster, in cache). A batch whose graph would
   * exceed it runs in equal pieces and its logits are joined, so memory stays bounded however
   * much a crossbar model expands the products (bit slices × tiles). Not with extra outputs.
   */
  maxTensorBytes?: number;
}

const DEFAULT_MAX_TENSOR_BYTES = 8 * 2 ** 20;

/**
 * Analog params embedded by default up to this many bytes. Embedding holds another copy or two
 * while the session is made; bit-sliced cells (0.7 GB for DeiT-S on 4 slices, with squares)
 * gained nothing measurable from it and took 1 GB more at peak (3.6 against 2.6 GB).
 */
const BAKE_ANALOG_BYTES = 256 * 2 ** 20;

/** Bytes of the param values a graph reads. */
const paramBytes = (root: Tensor): number =>
  topoSort([root])
    .filter((t) => t.op === 'param')
    .reduce((n, t) => n + (t.attrs as { value: HostArray }).value.data.byteLength, 0);

/** Rows [s, e) of a batch-first array (a view, no copy). */
function rows(a: HostArray, s: number, e: number): HostArray {
  const inner = a.shape.slice(1).reduce((x, y) => x * y, 1);
  return {
    dtype: a.dtype,
    shape: [e - s, ...a.shape.slice(1)],
    data: a.data.subarray(s * inner, e * inner) as HostData,
  };
}

/** Batch-first arrays stacked along the batch. */
function joinRows(parts: readonly HostArray[]): HostArray {
  const first = parts[0]!;
  const n = parts.reduce((t, p) => t + p.shape[0]!, 0);
  const out = hostArray(first.dtype, [n, ...first.shape.slice(1)]);
  let at = 0;
  for (const p of parts) {
    (out.data as Float32Array).set(p.data as Float32Array, at);
    at += p.data.length;
  }
  return out;
}

/** The feeds a model's graph takes, completed with defaults and checked for shape. */
export function modelFeeds(
  model: Model,
  x: ModelInputs,
): { feeds: Record<string, HostArray>; batch: number; seqLen?: number } {
  const c = model.config;
  if (c.family === 'vit') {
    const p = x.pixel_values;
    const want = [c.channels, c.imageSize, c.imageSize];
    if (p?.shape.length !== 4 || p.shape.slice(1).some((d, i) => d !== want[i])) {
      throw new InputError(
        `pixel_values must be float32 [batch, ${want.join(', ')}], got ${p ? fmtShape(p.shape) : 'nothing'}`,
      );
    }
    return { feeds: { pixel_values: p }, batch: p.shape[0]! };
  }
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
  return { feeds, batch: b, seqLen: t };
}

/**
 * Runs a model batch after batch, building and compiling its graph once per batch shape.
 * Weights are baked for the exact model and for a `fresh` predictor whose params take at most
 * 256 MiB; otherwise, with analog products, they are fed, so reprogrammed crossbar weights take
 * effect without recompiling.
 */
export class Predictor {
  private readonly graphs = new Map<string, Promise<RunnableGraph>>();
  /** Bytes of the largest tensor per example, by sequence length. */
  private readonly perExample = new Map<number, number>();
  constructor(
    readonly model: Model,
    private readonly opts: PredictOptions = {},
  ) {}

  /** Frees a `fresh` predictor's sessions now (shared ones stay cached); a later run compiles again. */
  async release(): Promise<void> {
    const graphs = [...this.graphs.values()];
    this.graphs.clear();
    if (this.opts.fresh) for (const g of graphs) await (await g).release();
  }

  async logits(x: ModelInputs): Promise<HostArray> {
    return (await this.run(x))['logits']!;
  }

  /** Every output of the graph for a batch: logits and any extra outputs. */
  async run(x: ModelInputs): Promise<Record<string, HostArray>> {
    const { feeds, batch, seqLen } = modelFeeds(this.model, x);
    const pieces = this.opts.outputs ? 1 : this.piecesFor(batch, seqLen);
    if (pieces > 1) {
      const size = Math.ceil(batch / pieces);
      const parts: HostArray[] = [];
      for (let s = 0; s < batch; s += size) {
        const e = Math.min(s + size, batch);
        const part = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, rows(v, s, e)]));
        parts.push((await this.runWhole(part, e - s, seqLen))['logits']!);
      }
      return { logits: joinRows(parts) };
    }
    return this.runWhole(feeds, batch, seqLen);
  }

  /** How many pieces a batch runs in, so that no tensor of its graph exceeds the budget. */
  private piecesFor(batch: number, seqLen?: number): number {
    if (batch === 1) return 1;
    const budget = this.opts.maxTensorBytes ?? DEFAULT_MAX_TENSOR_BYTES;
    let perExample = this.perExample.get(seqLen ?? 0);
    if (perExample === undefined) {
      const shape = seqLen === undefined ? { batch: 1 } : { batch: 1, seqLen };
      const graph = this.model.graph(shape, this.opts.matmuls ?? digital);
      perExample = topoSort([graph.logits]).reduce((m, t) => Math.max(m, numel(t.shape)), 0) * 4;
      this.perExample.set(seqLen ?? 0, perExample);
    }
    return Math.min(batch, Math.ceil((perExample * batch) / budget));
  }

  private async runWhole(
    feeds: Record<string, HostArray>,
    batch: number,
    seqLen?: number,
  ): Promise<Record<string, HostArray>> {
    const key = `${batch}x${seqLen ?? 0}`;
    let g = this.graphs.get(key);
    if (!g) {
      const graph = this.model.graph(
        seqLen === undefined ? { batch } : { batch, seqLen },
        this.opts.matmuls ?? digital,
      );
      g = compile(
        { logits: graph.logits, ...this.opts.outputs?.() },
        {
          bakeParams:
            this.opts.bakeParams ??
            (!this.opts.matmuls ||
              (this.opts.fresh === true && paramBytes(graph.logits) <= BAKE_ANALOG_BYTES)),
          ...(this.opts.fresh ? { cache: false } : {}),
          ...(this.opts.provider ? { provider: this.opts.provider } : {}),
        },
      );
      this.graphs.set(key, g);
    }
    const session = await g;
    return session.run(
      Object.fromEntries(
        session.inputs.filter((i) => !i.param && !i.noise).map((i) => [i.name, feeds[i.name]!]),
      ),
    );
  }
}

/** Logits (B, labels) for one batch. */
export async function predictLogits(
  model: Model,
  x: ModelInputs,
  opts: PredictOptions = {},
): Promise<HostArray> {
  return new Predictor(model, opts).logits(x);
}
