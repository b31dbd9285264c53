/**
 * Runs a graph on the GPU through WebGPU: the steps of plan.ts in one command encoder and one
 * submit per run (host kernels without a WebGPU dispatch split it), values in GPU buffers from
 * the feeds to the outputs, intermediate buffers shared by values whose lifetimes do not meet.
 */
import type { HostArray, HostData } from '../../graph/ndarray.js';
import type { GraphInput, GraphOutput } from '../../graph/onnx.js';
import type { HostKernel } from '../../graph/ops.js';
import { fmtShape, GraphError, numel } from '../../graph/shape.js';
import type { Tensor } from '../../graph/tensor.js';
import { checkFeeds } from '../feeds.js';
import type { RunnableGraph } from '../session.js';
import { type Gate, gatedCode, gateKernel } from './branches.js';
import { type DeviceOptions, type Gpu, gpuDevice } from './device.js';
import { type GateStep, planGraph, type Step, source } from './plan.js';

export interface WebGpuOptions extends DeviceOptions {
  /** Params are uploaded once, now, and are no inputs (later changes to their values unseen). */
  bakeParams?: boolean;
  /**
   * Share the compiled graph (its GPU buffers) with earlier compiles of the same graph
   * (default true); a shared graph's random streams continue across its users' runs.
   */
  cache?: boolean;
}

/** A GPU buffer holding one value, or several whose lifetimes do not meet. */
interface Storage {
  bytes: number;
  buffer?: GPUBuffer;
}

/** A leaf fed at every run: an input or a param (by name; leaves of one name share it). */
interface Fed {
  input: GraphInput;
  /** The leaf's place in the topological order (where a later compile's param is found). */
  position: number;
  storage: Storage;
  /** A fed param value already in the buffer (uploads are cached by the array's identity). */
  uploaded?: HostArray;
}

const wordBytes = (t: { shape: readonly number[] }): number => Math.max(4, numel(t.shape) * 4);

/** A host array as 4-byte words (int64 truncated to int32, bools widened to u32). */
function toWords(v: HostArray): Float32Array | Int32Array | Uint32Array {
  const d = v.data;
  if (d instanceof BigInt64Array) return Int32Array.from(d, (x) => Number(BigInt.asIntN(32, x)));
  if (d instanceof Uint8Array) return Uint32Array.from(d);
  return d;
}

function fromWords(
  words: ArrayBuffer,
  t: { shape: readonly number[]; dtype: GraphOutput['dtype'] },
): HostArray {
  const n = numel(t.shape);
  let data: HostData;
  if (t.dtype === 'float32') data = new Float32Array(words, 0, n).slice();
  else if (t.dtype === 'int32') data = new Int32Array(words, 0, n).slice();
  else if (t.dtype === 'int64') data = BigInt64Array.from(new Int32Array(words, 0, n), (x) => BigInt(x));
  else data = Uint8Array.from(new Uint32Array(words, 0, n));
  return { dtype: t.dtype, shape: [...t.shape], data };
}

/** A short stable hash (FNV-1a, two lanes) of text or bytes. */
function hash(parts: readonly (string | HostData)[]): string {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (const p of parts) {
    const bytes =
      typeof p === 'string'
        ? new TextEncoder().encode(p)
        : new Uint8Array(p.buffer, p.byteOffset, p.byteLength);
    // four bytes at a time where they are aligned (weights are large)
    const words =
      bytes.byteOffset % 4 === 0 ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >> 2) : [];
    for (const x of words) {
      a = Math.imul(a ^ x, 0x01000193);
      b = Math.imul(b ^ x, 0x5bd1e995);
    }
    for (let k = words.length * 4; k < bytes.length; k++) {
      a = Math.imul(a ^ bytes[k]!, 0x01000193);
      b = Math.imul(b ^ bytes[k]!, 0x5bd1e995);
    }
  }
  return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
}

/** A graph's structure, shapes, leaf names and fixed values (constants; params when baked). */
function graphKey(
  order: readonly Tensor[],
  results: Readonly<Record<string, Tensor>>,
  bake: boolean,
  lazy: boolean,
): string {
  const pos = new Map(order.map((t, k) => [t.id, k]));
  const fixed = (t: Tensor) => t.op === 'constant' || (bake && t.op === 'param');
  return hash([
    bake ? 'baked\n' : 'fed\n',
    lazy ? 'lazy\n' : 'both\n',
    ...order.map((t) => {
      const a =
        t.op === 'constant'
          ? ''
          : t.op === 'param'
            ? (t.attrs as { name: string }).name
            : JSON.stringify(t.attrs);
      return `${t.op} ${t.dtype}[${t.shape}] ${a} ${t.inputs.map((i) => pos.get(i.id))}\n`;
    }),
    ...order.filter(fixed).map((t) => (t.attrs as { value: HostArray }).value.data),
    ...Object.entries(results).map(([n, t]) => `O ${n} ${pos.get(t.id)}\n`),
  ]);
}

/** Compiled graphs shared by later compiles of the same key (as ONNX Runtime sessions are). */
const graphs = new Map<string, Promise<WebGpuGraph>>();

const pipelines = new Map<string, Promise<GPUComputePipeline>>();
const layouts = new Map<string, GPUPipelineLayout>();

/**
 * The bind group layouts of a kernel with `inputs` storage inputs, maybe its gate's flag (a
 * uniform after the output) and maybe the run uniform.
 */
function layoutFor(device: GPUDevice, inputs: number, run: boolean, gated: boolean): GPUPipelineLayout {
  const key = `${inputs}${run ? 'r' : ''}${gated ? 'g' : ''}`;
  let l = layouts.get(key);
  if (!l) {
    const storage = device.createBindGroupLayout({
      entries: [...Array(inputs + (gated ? 2 : 1)).keys()].map((k) => ({
        binding: k,
        visibility: GPUShaderStage.COMPUTE,
        buffer: {
          type:
            k < inputs
              ? ('read-only-storage' as const)
              : k === inputs
                ? ('storage' as const)
                : ('uniform' as const),
        },
      })),
    });
    const groups = [storage];
    if (run)
      groups.push(
        device.createBindGroupLayout({
          entries: [{ binding: 0, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'uniform' } }],
        }),
      );
    l = device.createPipelineLayout({ bindGroupLayouts: groups });
    layouts.set(key, l);
  }
  return l;
}

/** Pipelines are cached by WGSL source (and binding layout) for the life of the process. */
function pipelineFor(
  device: GPUDevice,
  code: string,
  inputs: number,
  run: boolean,
  gated = false,
): Promise<GPUComputePipeline> {
  const key = `${inputs}${run ? 'r' : ''}${gated ? 'g' : ''}\n${code}`;
  let p = pipelines.get(key);
  if (!p) {
    p = device
      .createComputePipelineAsync({
        layout: layoutFor(device, inputs, run, gated),
        compute: { module: device.createShaderModule({ code }), entryPoint: 'main' },
      })
      .catch((e: Error) => {
        pipelines.delete(key);
        throw new GraphError('webgpu', `kernel does not compile: ${e.message}\n${code}`);
      });
    pipelines.set(key, p);
  }
  return p;
}

/** Compiles `outputs` for the WebGPU runtime (runtime/webgpu/device.ts picks the GPU). */
export async function compileWebGpu(
  outputs: Readonly<Record<string, Tensor>>,
  opts: WebGpuOptions = {},
): Promise<RunnableGraph> {
  const gpu = await gpuDevice(opts);
  const bake = opts.bakeParams === true;
  const lazy = lazyBranches();
  const plan = planGraph(
    Object.values(outputs),
    gpu.device.limits.maxStorageBuffersPerShaderStage - 1,
    lazy,
    gpu.wgslFeatures,
  );
  const key = graphKey(plan.order, outputs, bake, lazy);
  const known = opts.cache === false ? undefined : graphs.get(key);
  if (known) return new GraphHandle(await known, plan.order);
  const made = (async () => {
    const graph = new WebGpuGraph(gpu, plan.order, plan.steps, outputs, bake, key);
    await graph.prepare();
    return graph;
  })();
  if (opts.cache !== false) {
    graphs.set(key, made);
    made.catch(() => graphs.delete(key));
  }
  return new GraphHandle(await made, plan.order);
}

/**
 * One compile's view of a compiled graph, which compiles of the same key share: its own params'
 * current values and its own host kernels are what its runs read.
 */
class GraphHandle implements RunnableGraph {
  readonly inputs: readonly GraphInput[];
  readonly outputs: readonly GraphOutput[];
  readonly key: string;
  constructor(
    private readonly graph: WebGpuGraph,
    private readonly order: readonly Tensor[],
  ) {
    this.inputs = graph.inputsOf(order);
    this.outputs = graph.outputs;
    this.key = graph.key;
  }

  run(feeds: Readonly<Record<string, HostArray>> = {}, firstSample = 0): Promise<Record<string, HostArray>> {
    return this.graph.run(feeds, firstSample, this.order, this.inputs);
  }

  release(): Promise<void> {
    return this.graph.release();
  }
}

type Encoded =
  | {
      kind: 'dispatch';
      pipeline: GPUComputePipeline;
      groups: GPUBindGroup[];
      grid: readonly [number, number, number];
      /** A gated kernel's byte offset of its gate's flag (`WebGpuGraph.gated`). */
      flag?: number;
      /** The op it computes and its output shape (profiles are kept per label). */
      label: string;
    }
  | { kind: 'host'; position: number; inputs: Storage[]; output: Storage };

/** A compiled graph: its buffers, pipelines and bind groups, run for one compile's tensors. */
class WebGpuGraph {
  readonly outputs: GraphOutput[];
  private readonly device: GPUDevice;
  private readonly fed: Fed[] = [];
  /** Storage by the id of the tensor whose buffer it is (views share their source's). */
  private readonly storage = new Map<number, Storage>();
  /** Constants and baked params: uploaded once. */
  private readonly fixed: { storage: Storage; value: HostArray }[] = [];
  private readonly runBuffer: GPUBuffer;
  /**
   * The gates' flags (a word each, from an offset a binding may start at), written by the gate
   * kernels and read by their kernels as a uniform, and each gate's offset.
   */
  private gated: { flags: GPUBuffer; offsets: Map<Gate, number> } | null = null;
  private encoded: Encoded[] = [];
  /** No host kernel among the steps: a run can be submitted before the one before it is read back. */
  private dispatchesOnly = false;
  /** Sets of readback buffers (one per output) not in use: a run takes one and gives it back once read. */
  private spare: GPUBuffer[][] = [];
  /** Runs submitted and not yet read back. */
  private readonly inflight = new Set<Promise<unknown>>();
  private resultStorage: Storage[] = [];
  private draws = 0;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly gpu: Gpu,
    private readonly order: readonly Tensor[],
    private readonly steps: readonly Step[],
    private readonly results: Readonly<Record<string, Tensor>>,
    bake: boolean,
    readonly key: string,
  ) {
    this.device = gpu.device;
    this.outputs = Object.entries(results).map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype }));
    this.runBuffer = this.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
    });
    this.leaves(bake);
    this.allocate();
  }

  /** Names the inputs as the ONNX lowering does; noise is no input (plan.ts draws it on the GPU). */
  private leaves(bake: boolean): void {
    const byName = new Map<string, Fed>();
    for (const [position, t] of this.order.entries()) {
      const a = t.attrs as { name?: string; value?: HostArray };
      if (t.op === 'constant' || (t.op === 'param' && bake)) {
        const storage = { bytes: this.bytesOf(t) };
        this.storage.set(t.id, storage);
        this.fixed.push({ storage, value: a.value! });
        continue;
      }
      if (t.op !== 'input' && t.op !== 'param') continue;
      const name = a.name!;
      const input: GraphInput = {
        name,
        shape: t.shape,
        dtype: t.dtype,
        ...(t.op === 'param' ? { param: t } : {}),
      };
      const prev = byName.get(name);
      if (prev) {
        const p = prev.input;
        if (p.dtype !== t.dtype || String(p.shape) !== String(t.shape) || (t.op === 'param') !== !!p.param)
          throw new GraphError(
            'compile',
            `two different leaves are named '${name}' ([${p.shape}] and [${t.shape}])`,
          );
        this.storage.set(t.id, prev.storage);
        continue;
      }
      const f: Fed = { input, position, storage: { bytes: this.bytesOf(t) } };
      byName.set(name, f);
      this.fed.push(f);
      this.storage.set(t.id, f.storage);
    }
  }

  /** Gives every computed value a buffer, reusing the buffers of values read no more. */
  private allocate(): void {
    const dedicated = new Set(this.storage.values());
    const results = new Set(Object.values(this.results).map((t) => source(t).id));
    // the step after which each value is read no more
    const dies = new Map<number, number[]>();
    const lastRead = new Map<number, number>();
    this.steps.forEach((s, k) => {
      for (const u of readsOf(s)) lastRead.set(source(u).id, k);
    });
    for (const [id, k] of lastRead) if (!results.has(id)) dies.set(k, [...(dies.get(k) ?? []), id]);
    const free: Storage[] = [];
    this.steps.forEach((s, k) => {
      const t = s.kind === 'dispatch' ? s.output : s.kind === 'host' ? s.op : undefined;
      if (t && !this.storage.has(t.id)) {
        const need = this.bytesOf(t);
        const fit = free
          .filter((f) => f.bytes >= need && f.bytes <= 2 * need)
          .sort((x, y) => x.bytes - y.bytes)[0];
        if (fit) free.splice(free.indexOf(fit), 1);
        this.storage.set(t.id, fit ?? { bytes: need });
      }
      for (const id of dies.get(k) ?? []) {
        const st = this.storage.get(id)!;
        if (!dedicated.has(st)) free.push(st);
      }
    });
  }

  /** A value's bytes, checked against the largest buffer a kernel may bind. */
  private bytesOf(t: Tensor): number {
    const bytes = wordBytes(t);
    const limit = this.device.limits.maxStorageBufferBindingSize;
    if (bytes > limit)
      throw new GraphError(
        t.op,
        `[${t.shape}] takes ${bytes} bytes, over the ${limit} bytes a WebGPU kernel may bind on this GPU: run smaller batches`,
      );
    return bytes;
  }

  private bufferOf(st: Storage): GPUBuffer {
    if (!st.buffer) {
      const size = Math.ceil(st.bytes / 16) * 16;
      st.buffer = this.device.createBuffer({
        size,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      memory.bytes += size;
      memory.peakBytes = Math.max(memory.peakBytes, memory.bytes);
    }
    return st.buffer;
  }

  private storageOf(t: Tensor): Storage {
    const st = this.storage.get(source(t).id);
    if (!st) throw new GraphError('webgpu', `internal: ${t} has no buffer`);
    return st;
  }

  /** Compiles the pipelines, makes the buffers and bind groups, uploads the fixed values. */
  async prepare(): Promise<void> {
    const d = this.device;
    const runGroup = (p: GPUComputePipeline) =>
      d.createBindGroup({
        layout: p.getBindGroupLayout(1),
        entries: [{ binding: 0, resource: { buffer: this.runBuffer } }],
      });
    this.layOutGates();
    this.dispatchesOnly = this.steps.every((s) => s.kind !== 'host');
    this.encoded = await Promise.all(
      this.steps.map(async (s): Promise<Encoded> => {
        if (s.kind === 'gate') return this.gateStep(s);
        if (s.kind === 'host')
          return {
            kind: 'host',
            position: this.order.indexOf(s.op),
            inputs: s.op.inputs.map((u) => this.storageOf(u)),
            output: this.storageOf(s.op),
          };
        if (s.spec.inputs !== s.inputs.length)
          throw new GraphError(
            s.output.op,
            `kernel binds ${s.spec.inputs} inputs, the op has ${s.inputs.length}`,
          );
        const flag = s.gate && this.gated?.offsets.get(s.gate);
        const gated = flag !== undefined;
        const code = gated ? gatedCode(s.spec.code, s.spec.inputs + 1) : s.spec.code;
        const pipeline = await pipelineFor(d, code, s.spec.inputs, !!s.spec.run, gated);
        const buffers: GPUBufferBinding[] = [...s.inputs, s.output].map((u) => ({
          buffer: this.bufferOf(this.storageOf(u)),
        }));
        if (gated) buffers.push({ buffer: this.gated!.flags, offset: flag, size: 16 });
        const groups = [
          d.createBindGroup({
            layout: pipeline.getBindGroupLayout(0),
            entries: buffers.map((resource, binding) => ({ binding, resource })),
          }),
        ];
        if (s.spec.run) groups.push(runGroup(pipeline));
        const op =
          s.output.op === 'host' ? (s.output.attrs as { key: string }).key.split(' ')[0] : s.output.op;
        return {
          kind: 'dispatch',
          pipeline,
          groups,
          grid: s.spec.grid,
          ...(gated ? { flag } : {}),
          label: `${op} ${fmtShape(s.output.shape)}`,
        };
      }),
    );
    for (const f of this.fed) this.bufferOf(f.storage);
    this.resultStorage = this.outputs.map((o) => this.storageOf(this.results[o.name]!));
    for (const st of this.resultStorage) this.bufferOf(st);
    // constants only kernels read as literals need no buffer
    for (const f of this.fixed)
      if (f.storage.buffer) d.queue.writeBuffer(f.storage.buffer, 0, toWords(f.value));
    this.spare.push(this.readbackSet());
  }

  private readbackSet(): GPUBuffer[] {
    return this.outputs.map((o) =>
      this.device.createBuffer({
        size: Math.ceil(wordBytes(o) / 16) * 16,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
    );
  }

  /** Places each gate's flag in the flags buffer, from offsets a binding may start at. */
  private layOutGates(): void {
    const gates = this.steps.flatMap((s) => (s.kind === 'gate' ? [s.gate] : []));
    if (!gates.length) return;
    const { minUniformBufferOffsetAlignment: u, minStorageBufferOffsetAlignment: st } = this.device.limits;
    const align = Math.max(u, st, 16);
    const flags = this.device.createBuffer({
      size: gates.length * align,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC,
    });
    this.gated = { flags, offsets: new Map(gates.map((g, k) => [g, k * align])) };
  }

  /** The gate kernel of `s`: its conditions' buffers in, its flag out. */
  private async gateStep(s: GateStep): Promise<Encoded> {
    const d = this.device;
    const spec = gateKernel(s.gate);
    const pipeline = await pipelineFor(d, spec.code, spec.inputs, false);
    const entries: GPUBufferBinding[] = [
      ...s.gate.terms.map((c) => ({ buffer: this.bufferOf(this.storageOf(c.cond)) })),
      { buffer: this.gated!.flags, offset: this.gated!.offsets.get(s.gate)!, size: 4 },
    ];
    return {
      kind: 'dispatch',
      pipeline,
      groups: [
        d.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: entries.map((resource, binding) => ({ binding, resource })),
        }),
      ],
      grid: spec.grid,
      label: `gate ×${s.gate.terms.length}`,
    };
  }

  /** The inputs of a compile whose tensors are `order` (its own params). */
  inputsOf(order: readonly Tensor[]): GraphInput[] {
    return this.fed.map((f) => (f.input.param ? { ...f.input, param: order[f.position]! } : f.input));
  }

  /** Runs with the param values and host kernels of the compile whose tensors are `order`. */
  run(
    feeds: Readonly<Record<string, HostArray>>,
    firstSample: number,
    order: readonly Tensor[],
    inputs: readonly GraphInput[],
  ): Promise<Record<string, HostArray>> {
    // A run of dispatches alone is submitted as soon as the run before it is, not when that one
    // is read back: the host's work for the next batch (the caller's, the upload, the encoding)
    // then overlaps the GPU's for this one. Host kernels and profiling wait for every run before.
    if (this.dispatchesOnly && !profiling()) {
      const started = this.queue.then(() => ({
        done: this.submitRun({ feeds, firstSample, order, inputs }),
      }));
      this.queue = started.catch(() => undefined);
      return started.then(({ done }) => done);
    }
    const next = this.queue
      .then(() => Promise.allSettled([...this.inflight]))
      .then(() => this.runNow({ feeds, firstSample, order, inputs }));
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Uploads, encodes and submits a run of dispatches alone; → its outputs, once read back. */
  private submitRun(run: RunArgs): Promise<Record<string, HostArray>> {
    const d = this.begin(run);
    const encoder = d.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const e of this.encoded) if (e.kind === 'dispatch') this.dispatch(pass, e);
    pass.end();
    const readback = this.spare.pop() ?? this.readbackSet();
    this.copyOut(encoder, readback);
    d.queue.submit([encoder.finish()]);
    const error = d.popErrorScope();
    const done = (async () => {
      try {
        const e = await error;
        if (e) throw new GraphError('run', `WebGPU: ${e.message}`);
        return await this.readOut(readback);
      } finally {
        this.spare.push(readback);
      }
    })();
    const forget = (): void => {
      this.inflight.delete(settled);
    };
    const settled: Promise<void> = done.then(forget, forget);
    this.inflight.add(settled);
    return done;
  }

  private dispatch(pass: GPUComputePassEncoder, e: Extract<Encoded, { kind: 'dispatch' }>): void {
    pass.setPipeline(e.pipeline);
    for (const [n, g] of e.groups.entries()) pass.setBindGroup(n, g);
    pass.dispatchWorkgroups(...e.grid);
  }

  /** Copies the outputs into `readback` at the end of `encoder`. */
  private copyOut(encoder: GPUCommandEncoder, readback: readonly GPUBuffer[]): void {
    this.outputs.forEach((o, k) => {
      encoder.copyBufferToBuffer(this.bufferOf(this.resultStorage[k]!), 0, readback[k]!, 0, wordBytes(o));
    });
  }

  /** The outputs from `readback`, once the GPU has written them. */
  private async readOut(readback: readonly GPUBuffer[]): Promise<Record<string, HostArray>> {
    await Promise.all(readback.map((b) => b.mapAsync(GPUMapMode.READ)));
    const out: Record<string, HostArray> = {};
    this.outputs.forEach((o, k) => {
      const b = readback[k]!;
      out[o.name] = fromWords(b.getMappedRange(), o);
      b.unmap();
    });
    return out;
  }

  async release(): Promise<void> {
    await this.queue;
    await Promise.allSettled([...this.inflight]);
    const shared = graphs.get(this.key);
    if (shared && (await shared) === this) graphs.delete(this.key);
    const all = new Set([...this.storage.values()].map((s) => s.buffer));
    for (const b of all) {
      if (!b) continue;
      memory.bytes -= b.size;
      b.destroy();
    }
    for (const b of this.spare.flat()) b.destroy();
    this.runBuffer.destroy();
    this.gated?.flags.destroy();
  }

  /** Checks a run's feeds, opens its error scope and uploads its inputs; → the device. */
  private begin({ feeds, firstSample, order, inputs }: RunArgs): GPUDevice {
    checkFeeds(inputs, feeds);
    this.device.pushErrorScope('validation');
    const q = this.device.queue;
    for (const f of this.fed) {
      const fed = feeds[f.input.name];
      const buffer = this.bufferOf(f.storage);
      if (f.input.param) {
        // a fed value is uploaded once; a param's own value at every run (optimisers and
        // Monte Carlo programming change it in place)
        if (fed && f.uploaded === fed) continue;
        q.writeBuffer(buffer, 0, toWords(fed ?? (order[f.position]!.attrs as { value: HostArray }).value));
        f.uploaded = fed;
      } else q.writeBuffer(buffer, 0, toWords(fed!));
    }
    q.writeBuffer(this.runBuffer, 0, Uint32Array.of(firstSample >>> 0, this.draws++ >>> 0, 0, 0));
    return this.device;
  }

  private async runNow(run: RunArgs): Promise<Record<string, HostArray>> {
    const d = this.begin(run);
    const { order, firstSample } = run;
    let encoder = d.createCommandEncoder();
    const counting = profiling();
    const timing = counting && this.gpu.timestamps ? new KernelTimes(d, this.encoded.length) : null;
    let pass = encoder.beginComputePass();
    for (const [k, e] of this.encoded.entries()) {
      if (e.kind === 'dispatch') {
        if (timing) {
          pass.end();
          pass = encoder.beginComputePass({ timestampWrites: timing.writes(k) });
        }
        this.dispatch(pass, e);
        continue;
      }
      pass.end();
      d.queue.submit([encoder.finish()]);
      await this.hostKernel(order[e.position]!, e, firstSample);
      encoder = d.createCommandEncoder();
      pass = encoder.beginComputePass();
    }
    pass.end();
    timing?.resolve(encoder);
    const flags = counting ? this.copyFlags(encoder) : null;
    const readback = this.spare.pop() ?? this.readbackSet();
    try {
      this.copyOut(encoder, readback);
      d.queue.submit([encoder.finish()]);
      const error = await d.popErrorScope();
      if (error) throw new GraphError('run', `WebGPU: ${error.message}`);
      const out = await this.readOut(readback);
      if (counting) {
        const ran = await this.ran(flags);
        if (timing) await timing.record(this.encoded, ran);
      }
      return out;
    } finally {
      this.spare.push(readback);
    }
  }

  /** A copy of the gates' flags, made at the end of `encoder` (null: no gates). */
  private copyFlags(encoder: GPUCommandEncoder): GPUBuffer | null {
    if (!this.gated) return null;
    const { flags } = this.gated;
    const copy = this.device.createBuffer({
      size: flags.size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    encoder.copyBufferToBuffer(flags, 0, copy, 0, flags.size);
    return copy;
  }

  /** Which encoded steps did work (gated ones: where their gate's flag was set), counted in `dispatches`. */
  private async ran(flags: GPUBuffer | null): Promise<boolean[]> {
    let words: Uint32Array | undefined;
    if (flags) {
      await flags.mapAsync(GPUMapMode.READ);
      words = new Uint32Array(flags.getMappedRange()).slice();
      flags.destroy();
    }
    const ran = this.encoded.map(
      (e) => e.kind === 'dispatch' && (e.flag === undefined || words![e.flag / 4] !== 0),
    );
    dispatches.runs++;
    dispatches.encoded += this.encoded.filter((e) => e.kind === 'dispatch').length;
    dispatches.ran += ran.filter(Boolean).length;
    return ran;
  }

  /**
   * A host kernel without a WebGPU dispatch: its inputs copied to the host, `run` there, its
   * output uploaded. Correct and slow (a round trip through the host per kernel per run).
   */
  private async hostKernel(
    op: Tensor,
    e: Extract<Encoded, { kind: 'host' }>,
    firstSample: number,
  ): Promise<void> {
    const d = this.device;
    const staging = op.inputs.map((u) =>
      d.createBuffer({
        size: Math.ceil(wordBytes(u) / 16) * 16,
        usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
      }),
    );
    const enc = d.createCommandEncoder();
    for (const [k, u] of op.inputs.entries())
      enc.copyBufferToBuffer(this.bufferOf(e.inputs[k]!), 0, staging[k]!, 0, wordBytes(u));
    d.queue.submit([enc.finish()]);
    await Promise.all(staging.map((b) => b.mapAsync(GPUMapMode.READ)));
    const values = op.inputs.map((u, k) => fromWords(staging[k]!.getMappedRange(), u));
    for (const b of staging) b.destroy();
    const out = (op.attrs as { run: HostKernel }).run(values, undefined, firstSample);
    d.queue.writeBuffer(this.bufferOf(e.output), 0, toWords(out));
  }
}

/** The values a step reads. */
const readsOf = (s: Step): readonly Tensor[] =>
  s.kind === 'dispatch' ? s.inputs : s.kind === 'host' ? s.op.inputs : s.gate.terms.map((c) => c.cond);

/**
 * Whether a `cond`'s branches run only when taken (branches.ts): the default, measured 2.2×
 * faster for `pcm-aihwkit` on an H100 and no slower elsewhere (BENCHMARKS.md, GPU);
 * $XBAR_GPU_BRANCHES=both computes both and selects, to compare.
 */
const lazyBranches = (): boolean => process.env['XBAR_GPU_BRANCHES'] !== 'both';

/** What one run takes: its feeds, the first sample that keys its noise, and its compile's tensors and inputs. */
interface RunArgs {
  feeds: Readonly<Record<string, HostArray>>;
  firstSample: number;
  order: readonly Tensor[];
  inputs: readonly GraphInput[];
}

const memory = { bytes: 0, peakBytes: 0 };

/**
 * Bytes of the values' buffers that compiled graphs hold on the GPU now, and the most they held
 * at once (the runtime's own count: the driver's overhead and Dawn's staging are not in it).
 */
export const gpuMemory = (): { bytes: number; peakBytes: number } => ({ ...memory });

/**
 * Whether runs count their dispatches and time each ($XBAR_GPU_PROFILE=1; times on adapters
 * with timestamp queries).
 */
const profiling = (): boolean => process.env['XBAR_GPU_PROFILE'] === '1';

const dispatches = { runs: 0, encoded: 0, ran: 0 };

/**
 * Dispatches of the profiled runs so far ($XBAR_GPU_PROFILE=1): `encoded`, the kernels the runs
 * issued, gate kernels included, and `ran`, those that did work (a gated kernel whose branch
 * was not taken returns at once).
 */
export const gpuDispatches = (): { runs: number; encoded: number; ran: number } => ({ ...dispatches });

const profile = new Map<string, { count: number; ns: number }>();

/**
 * GPU time per kernel label (op and output shape) summed over the runs so far, largest first,
 * when $XBAR_GPU_PROFILE=1: each dispatch then runs in a compute pass of its own, timed by
 * timestamp queries (slower, so a profiled run's total is not its speed). Kernels of a branch
 * not taken are not counted.
 */
export function gpuProfile(): { label: string; count: number; ms: number }[] {
  return [...profile.entries()]
    .map(([label, v]) => ({ label, count: v.count, ms: v.ns / 1e6 }))
    .sort((a, b) => b.ms - a.ms);
}

/** Steps per query set: WebGPU allows 4,096 queries in one, two per step. */
const STEPS_PER_SET = 2048;

/** The timestamp queries of one profiled run: a begin and an end per step, in sets of STEPS_PER_SET. */
class KernelTimes {
  private readonly sets: GPUQuerySet[] = [];
  private readonly resolved: GPUBuffer;
  private readonly read: GPUBuffer;
  constructor(
    device: GPUDevice,
    private readonly steps: number,
  ) {
    for (let k = 0; k < steps; k += STEPS_PER_SET)
      this.sets.push(
        device.createQuerySet({ type: 'timestamp', count: 2 * Math.min(STEPS_PER_SET, steps - k) }),
      );
    this.resolved = device.createBuffer({
      size: 16 * steps,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.read = device.createBuffer({
      size: 16 * steps,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }
  writes(k: number): GPUComputePassTimestampWrites {
    const at = 2 * (k % STEPS_PER_SET);
    return {
      querySet: this.sets[Math.floor(k / STEPS_PER_SET)]!,
      beginningOfPassWriteIndex: at,
      endOfPassWriteIndex: at + 1,
    };
  }
  resolve(encoder: GPUCommandEncoder): void {
    this.sets.forEach((set, i) => {
      encoder.resolveQuerySet(set, 0, set.count, this.resolved, 16 * STEPS_PER_SET * i);
    });
    encoder.copyBufferToBuffer(this.resolved, 0, this.read, 0, 16 * this.steps);
  }
  /** Adds the times of the steps that `ran` to the profile. */
  async record(encoded: readonly Encoded[], ran: readonly boolean[]): Promise<void> {
    await this.read.mapAsync(GPUMapMode.READ);
    const t = new BigUint64Array(this.read.getMappedRange());
    encoded.forEach((e, k) => {
      if (e.kind !== 'dispatch' || !ran[k]) return;
      const p = profile.get(e.label) ?? { count: 0, ns: 0 };
      p.count++;
      p.ns += Number(t[2 * k + 1]! - t[2 * k]!);
      profile.set(e.label, p);
    });
    this.read.unmap();
    for (const set of this.sets) set.destroy();
    this.resolved.destroy();
    this.read.destroy();
  }
}
