/**
 * Logits of a model for a batch of inputs, in ONNX Runtime. Text inputs get HF's defaults
 * (attention mask of ones, token types of zeros) and host-computed position ids.
 */
import { topoSort } from '../graph/autodiff.js';
import { type HostArray, type HostData, hostArray } from '../graph/ndarray.js';
import { numel } from '../graph/shape.js';
import type { Tensor } from '../graph/tensor.js';
import { digital, type Matmuls } from '../models/encoder.js';
import type { GraphShape, ModelInputs } from '../models/family.js';
import type { Model } from '../models/index.js';
import { compile, feedsFor, type Provider, type RunnableGraph } from '../runtime/session.js';

export interface PredictOptions {
  provider?: Provider;
  /**
   * Compile private sessions (random streams start from their seeds) instead of shared ones;
   * `release()` frees them.
   */
  fresh?: boolean;
  /**
   * Embed the params' values in the graph as constants, so that ONNX Runtime pre-packs the
   * weights (faster forwards), for a predictor whose params keep their values while it lives:
   * later changes to a param are not seen. Default: without crossbar products when the params
   * take at most 512 MiB, and with them when `fresh` (a programmed Monte Carlo instance) and the
   * params take at most 256 MiB; shared analog sessions feed the weights, so one session serves
   * every instance.
   */
  bakeParams?: boolean;
  /** How crossbar products are computed (default: exact). */
  matmuls?: Matmuls;
  /** Extra graph outputs, asked for right after each graph is built (e.g. AttentionSnr taps). */
  outputs?: (shape: GraphShape) => Record<string, Tensor>;
  /**
   * Bytes the largest tensor of a run may take (default 8 MiB on the CPU: smaller pieces also
   * run faster, in cache; 512 MiB on a GPU). A batch whose graph would exceed it runs in equal pieces and its logits are
   * joined, so memory stays bounded however much a crossbar model expands the products (bit
   * slices × tiles). Not with extra outputs.
   */
  maxTensorBytes?: number;
}

const DEFAULT_MAX_TENSOR_BYTES = 8 * 2 ** 20;
/** On a GPU: pieces as large as the batch allows, up to a tensor of this many bytes. */
const GPU_MAX_TENSOR_BYTES = 512 * 2 ** 20;

/**
 * Analog params embedded by default up to this many bytes. Embedding holds another copy or two
 * while the session is made; bit-sliced cells (0.7 GB for DeiT-S on 4 slices, with squares)
 * gained nothing measurable from it and raised the peak memory (docs/analog-model.md).
 */
const BAKE_ANALOG_BYTES = 256 * 2 ** 20;

/**
 * Floating-point params embedded by default up to this many bytes (BERT-base's 0.44 GB is
 * under it). Embedding holds the weights three more times while the session is made (the
 * serialised model, ONNX Runtime's parse of it and its initialisers) and once more after it
 * (pre-packed), where fed weights are the model's own arrays: above it, a large model is fed.
 */
const BAKE_IDEAL_BYTES = 512 * 2 ** 20;

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

/**
 * Runs a model batch after batch, building and compiling its graph once per batch shape.
 * Weights are baked for the exact model up to 512 MiB and for a `fresh` analog predictor up to
 * 256 MiB; otherwise they are fed, so reprogrammed crossbar weights take effect without
 * recompiling and a large model is not held twice.
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

  async logits(x: ModelInputs, firstSample = 0): Promise<HostArray> {
    return (await this.run(x, firstSample))['logits']!;
  }

  /**
   * Every output of the graph for a batch: logits and any extra outputs. `firstSample`: the
   * index of the batch's first sample in its data set, which keys each sample's noise (so a
   * sample gets the same noise in any batch).
   */
  async run(x: ModelInputs, firstSample = 0): Promise<Record<string, HostArray>> {
    const { feeds, shape } = this.model.feeds(x);
    const { batch } = shape;
    const pieces = this.opts.outputs ? 1 : this.piecesFor(shape);
    if (pieces > 1) {
      const size = Math.ceil(batch / pieces);
      const parts: HostArray[] = [];
      for (let s = 0; s < batch; s += size) {
        const e = Math.min(s + size, batch);
        const part = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, rows(v, s, e)]));
        parts.push((await this.runWhole(part, { ...shape, batch: e - s }, firstSample + s))['logits']!);
      }
      return { logits: joinRows(parts) };
    }
    return this.runWhole(feeds, shape, firstSample);
  }

  /** How many pieces a batch runs in, so that no tensor of its graph exceeds the budget. */
  private piecesFor(shape: GraphShape): number {
    if (shape.batch === 1) return 1;
    const budget =
      this.opts.maxTensorBytes ??
      (this.opts.provider === 'webgpu' ? GPU_MAX_TENSOR_BYTES : DEFAULT_MAX_TENSOR_BYTES);
    let perExample = this.perExample.get(shape.seqLen ?? 0);
    if (perExample === undefined) {
      const graph = this.model.graph({ ...shape, batch: 1 }, this.opts.matmuls ?? digital);
      perExample = topoSort([graph.logits]).reduce((m, t) => Math.max(m, numel(t.shape)), 0) * 4;
      this.perExample.set(shape.seqLen ?? 0, perExample);
    }
    return Math.min(shape.batch, Math.ceil((perExample * shape.batch) / budget));
  }

  private async runWhole(
    feeds: Record<string, HostArray>,
    shape: GraphShape,
    firstSample: number,
  ): Promise<Record<string, HostArray>> {
    const key = `${shape.batch}x${shape.seqLen ?? 0}`;
    let g = this.graphs.get(key);
    if (!g) {
      const graph = this.model.graph(shape, this.opts.matmuls ?? digital);
      g = compile(
        { logits: graph.logits, ...this.opts.outputs?.(shape) },
        {
          bakeParams:
            this.opts.bakeParams ??
            (this.opts.matmuls
              ? this.opts.fresh === true && paramBytes(graph.logits) <= BAKE_ANALOG_BYTES
              : paramBytes(graph.logits) <= BAKE_IDEAL_BYTES),
          ...(this.opts.fresh ? { cache: false } : {}),
          ...(this.opts.provider ? { provider: this.opts.provider } : {}),
        },
      );
      this.graphs.set(key, g);
    }
    const session = await g;
    return session.run(feedsFor(session, feeds), firstSample);
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

/**
 * The graph of `model` for `batch` with products by `through` (floating point by default),
 * tapped: every static layer's input x [rows, in] and weight, by name; and the batch's feeds.
 */
export function tapLayers(model: Model, batch: ModelInputs, through: Matmuls = digital) {
  const taps = new Map<string, { x: Tensor; w: Tensor }>();
  const { feeds, shape } = model.feeds(batch);
  model.graph(shape, {
    ...through,
    linear: (name, x, w, b) => {
      const inDim = x.shape.at(-1)!;
      taps.set(name, { x: x.reshape([x.size / inDim, inDim]), w });
      return through.linear(name, x, w, b);
    },
  });
  return { taps, feeds };
}

/**
 * The inputs x [rows, in] that static layers `names` receive for `batch`, flowing through
 * `through` (floating point by default): what calibration and the initial learned ranges read.
 */
export async function recordLayerInputs(
  model: Model,
  batch: ModelInputs,
  names: readonly string[],
  through: Matmuls = digital,
): Promise<Map<string, HostArray>> {
  const { taps, feeds } = tapLayers(model, batch, through);
  const g = await compile(Object.fromEntries(names.map((n) => [n, taps.get(n)!.x])), {
    cache: through === digital,
  });
  const out = await g.run(feedsFor(g, feeds));
  return new Map(names.map((n) => [n, out[n]!]));
}
