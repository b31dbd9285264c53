/**
 * Runs lowered graphs in ONNX Runtime. Sessions are cached per (graph structure and shapes,
 * provider, threads), so a new Monte Carlo instance or a training step with new weights
 * reuses the compiled session. Host arrays are handed to the runtime without copies.
 */
import * as ort from 'onnxruntime-node';
import type { HostArray, HostData } from '../graph/ndarray.js';
import { type GraphInput, type GraphOutput, type LowerOptions, lowerToOnnx } from '../graph/onnx.js';
import { GraphError, numel } from '../graph/shape.js';
import type { Tensor } from '../graph/tensor.js';
import { checkFeeds, describeInput } from './feeds.js';
import { drawNoise, envThreads } from './native.js';
import { compileSegmented, hasHostOps } from './segments.js';

export type Provider = 'cpu' | 'webgpu';

export interface CompileOptions extends LowerOptions {
  /**
   * Where the graph runs: 'cpu' (default: ONNX Runtime) or 'webgpu' (xbar's WebGPU runtime,
   * runtime/webgpu/: Dawn in Node, navigator.gpu in a browser).
   */
  provider?: Provider;
  /** The WebGPU adapter: its index or a substring of its name (runtime/webgpu/device.ts). */
  gpu?: number | string;
  /**
   * Intra-op threads on the CPU; default: $XBAR_THREADS, else ONNX Runtime's choice (one per
   * physical core — too many when several jobs share a machine, as ORT's threads spin).
   */
  threads?: number;
  /**
   * Share a cached session with earlier compiles of the same graph (default true). A session's
   * random ops (RandomNormal, RandomUniform) continue their stream across runs; pass false to
   * restart it from the seeds.
   */
  cache?: boolean;
  /**
   * Whether the runtime's threads spin-wait for work after a run (default true: fastest when
   * runs follow each other; off where host kernels run between them).
   */
  spinning?: boolean;
}

/** The values of `all` that `g` takes as feeds: its inputs that are neither params nor noise. */
export const feedsFor = (
  g: RunnableGraph,
  all: Readonly<Record<string, HostArray>>,
): Record<string, HostArray> =>
  Object.fromEntries(g.inputs.filter((i) => !i.param && !i.noise).map((i) => [i.name, all[i.name]!]));

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** A compiled graph: one ONNX Runtime session, or a chain of them around host kernels. */
export interface RunnableGraph {
  readonly inputs: readonly GraphInput[];
  readonly outputs: readonly GraphOutput[];
  /** Identifies the graph's structure (what its sessions are cached by). */
  readonly key: string;
  /**
   * Runs the graph. `feeds` holds every named input, and may override params by name;
   * params not in `feeds` are read from their current value. `firstSample`: the index in the
   * data set of the batch's first sample (default 0), which keys the noise of every sample.
   */
  run(feeds?: Readonly<Record<string, HostArray>>, firstSample?: number): Promise<Record<string, HostArray>>;
  /**
   * Frees the native memory of its sessions (weights embedded as constants, buffers) now rather
   * than at some later garbage collection. Only for graphs compiled with `cache: false`: cached
   * sessions are shared. The graph cannot run afterwards.
   */
  release(): Promise<void>;
}

/** A graph compiled into an ONNX Runtime session, runnable with new feeds and param values. */
class CompiledGraph implements RunnableGraph {
  constructor(
    private readonly session: ort.InferenceSession,
    readonly inputs: readonly GraphInput[],
    readonly outputs: readonly GraphOutput[],
    readonly key: string,
  ) {}

  /** The noise inputs' buffers, for the next run to fill again. */
  private readonly noiseBuffers = new Map<string, Float32Array>();

  async run(
    feeds: Readonly<Record<string, HostArray>> = {},
    firstSample = 0,
  ): Promise<Record<string, HostArray>> {
    checkFeeds(this.inputs, feeds);
    const ortFeeds: Record<string, ort.Tensor> = {};
    const drawn = new Map<string, Float32Array>();
    for (const i of this.inputs) {
      if (i.noise && !feeds[i.name]) {
        // a buffer of an earlier run, free again (runs may overlap: each takes its own)
        const data = this.noiseBuffers.get(i.name) ?? new Float32Array(numel(i.shape));
        this.noiseBuffers.delete(i.name);
        drawn.set(i.name, data);
        drawNoise(data, i.noise.layout, i.noise.seed, i.noise.std, firstSample);
        ortFeeds[i.name] = new ort.Tensor('float32', data, i.shape);
        continue;
      }
      const v = feeds[i.name] ?? (i.param!.attrs as { value: HostArray }).value;
      ortFeeds[i.name] = new ort.Tensor(i.dtype, v.data, v.shape);
    }
    let result: ort.InferenceSession.OnnxValueMapType;
    try {
      result = await this.session.run(ortFeeds);
    } catch (e) {
      throw new GraphError(
        'run',
        `ONNX Runtime failed: ${(e as Error).message}\n  inputs:\n  ${this.inputs.map(describeInput).join('\n  ')}`,
      );
    } finally {
      for (const [name, data] of drawn) this.noiseBuffers.set(name, data);
    }
    const out: Record<string, HostArray> = {};
    for (const o of this.outputs) {
      const t = result[o.name]!;
      out[o.name] = { dtype: o.dtype, shape: [...t.dims], data: t.data as HostData };
    }
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * Lowers `outputs` to ONNX and returns a runnable graph; sessions are cached by structure.
 * A graph with host kernels runs as a chain of sessions around them (runtime/segments.ts).
 */
export async function compile(
  outputs: Readonly<Record<string, Tensor>>,
  opts: CompileOptions = {},
): Promise<RunnableGraph> {
  if (opts.provider === 'webgpu') {
    // loaded on first use: Dawn's native module only where a GPU is asked for
    const { compileWebGpu } = await import('./webgpu/executor.js');
    return compileWebGpu(outputs, {
      ...(opts.bakeParams ? { bakeParams: true } : {}),
      ...(opts.cache === false ? { cache: false } : {}),
      ...(opts.gpu !== undefined ? { gpu: opts.gpu } : {}),
    });
  }
  if (!hasHostOps(Object.values(outputs))) return compileOnnx(outputs, opts);
  // between the sessions the host kernels use the cores: sessions must not spin-wait on them
  return compileSegmented(outputs, { ...opts, spinning: false });
}

/** One ONNX Runtime session for a graph without host kernels. */
export async function compileOnnx(
  outputs: Readonly<Record<string, Tensor>>,
  opts: CompileOptions = {},
): Promise<CompiledGraph> {
  const lowered = lowerToOnnx(outputs, opts);
  const provider = opts.provider ?? 'cpu';
  const threads = opts.threads ?? envThreads();
  const spinning = opts.spinning ?? true;
  const key = `${lowered.key}|${provider}|${threads ?? 0}|${spinning}`;
  let session = opts.cache === false ? undefined : sessions.get(key);
  if (!session) {
    const options: ort.InferenceSession.SessionOptions = {
      executionProviders: [provider],
      graphOptimizationLevel: 'all',
      ...(threads ? { intraOpNumThreads: threads } : {}),
      ...(spinning ? {} : { extra: { session: { intra_op: { allow_spinning: '0' } } } }),
    };
    session = ort.InferenceSession.create(lowered.model, options);
    if (opts.cache !== false) {
      sessions.set(key, session);
      session.catch(() => sessions.delete(key));
    }
  }
  return new CompiledGraph(await session, lowered.inputs, lowered.outputs, key);
}

/** How many sessions the cache holds (for tests and diagnostics). */
export const sessionCount = (): number => sessions.size;
