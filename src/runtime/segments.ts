/**
 * Graphs with host kernels (`hostCall` ops: work ONNX Runtime has no kernel for, such as the
 * native fused crossbar product) run as a chain: ONNX graphs for everything between the
 * kernels, the kernels on the host arrays in between.
 *
 * Levels: a leaf is at level 0, an op at the highest level of its inputs, a host kernel one
 * above. Level L runs its host kernels, then one ONNX graph of all its other ops. A value used
 * at another level (or by a kernel) crosses as an output of its graph and an input of the next,
 * named `cut<id>`. Noise read by a kernel, or by graphs of two levels, is drawn here once per run
 * (every reader sees the same values) and fed by name.
 */
import { createHash } from 'node:crypto';
import { topoSort } from '../graph/autodiff.js';
import type { HostArray } from '../graph/ndarray.js';
import type { GraphInput, GraphOutput } from '../graph/onnx.js';
import { type HostKernel, OPS } from '../graph/ops.js';
import { GraphError, numel } from '../graph/shape.js';
import { input, Tensor } from '../graph/tensor.js';
import { type NoiseLayout, noiseLayout } from '../util/philox.js';
import { drawNoise } from './native.js';
import { type CompileOptions, compileOnnx, type RunnableGraph } from './session.js';

type Step =
  | { kind: 'host'; op: Tensor; name: string }
  | { kind: 'graph'; graph: RunnableGraph; outputs: ReadonlyMap<string, string> };

interface DrawnNoise {
  name: string;
  seed: number;
  std: number;
  layout: NoiseLayout;
  shape: readonly number[];
}

export const hasHostOps = (outputs: readonly Tensor[]): boolean =>
  topoSort(outputs).some((t) => t.op === 'host');

export async function compileSegmented(
  outputs: Readonly<Record<string, Tensor>>,
  opts: CompileOptions,
): Promise<RunnableGraph> {
  const roots = Object.values(outputs);
  const order = topoSort(roots);
  // values crossing between steps are named by their position in topological order, so a
  // rebuilt graph of the same structure gets the same names (and reuses its sessions)
  const pos = new Map(order.map((t, k) => [t.id, k]));
  const cutName = (t: Tensor): string => `cut${pos.get(t.id)}`;
  const level = new Map<number, number>();
  for (const t of order) {
    const l = Math.max(0, ...t.inputs.map((i) => level.get(i.id)!));
    level.set(t.id, OPS[t.op].leaf ? 0 : t.op === 'host' ? l + 1 : l);
  }
  const isLeaf = (t: Tensor) => 'leaf' in OPS[t.op];
  // where each value is read: by a kernel, or by an op of some level
  const readers = new Map<number, Set<string>>();
  const readBy = (t: Tensor, who: string) => {
    const r = readers.get(t.id) ?? new Set<string>();
    r.add(who);
    readers.set(t.id, r);
  };
  for (const t of order)
    for (const i of t.inputs) readBy(i, t.op === 'host' ? 'host' : `L${level.get(t.id)}`);
  const finals = new Set(roots.map((t) => t.id));
  // noise drawn here: read by a kernel or at two levels
  const drawn = order.filter(
    (t) => t.op === 'noise' && (readers.get(t.id)!.has('host') || readers.get(t.id)!.size > 1),
  );
  const drawnIds = new Set(drawn.map((t) => t.id));

  const top = Math.max(0, ...order.map((t) => level.get(t.id)!));
  const steps: Step[] = [];
  const keyParts: string[] = [];
  for (let l = 0; l <= top; l++) {
    for (const h of order.filter((t) => t.op === 'host' && level.get(t.id) === l)) {
      steps.push({ kind: 'host', op: h, name: cutName(h) });
      keyParts.push(
        `H ${(h.attrs as { key: string }).key} ${h.inputs.map((i) => pos.get(i.id)).join(',')} ${pos.get(h.id)}`,
      );
    }
    const members = order.filter((t) => !isLeaf(t) && t.op !== 'host' && level.get(t.id) === l);
    if (!members.length) continue;
    // the level's ops, rebuilt with values from elsewhere as named inputs
    const rebuilt = new Map<number, Tensor>();
    const cutInputs = new Map<number, Tensor>();
    const source = (i: Tensor): Tensor => {
      const own = rebuilt.get(i.id);
      if (own) return own;
      if (isLeaf(i) && !drawnIds.has(i.id)) return i;
      let p = cutInputs.get(i.id);
      if (!p) {
        p = input(cutName(i), i.shape, i.dtype);
        cutInputs.set(i.id, p);
      }
      return p;
    };
    for (const t of members)
      rebuilt.set(t.id, new Tensor(t.op, t.inputs.map(source), t.attrs, t.shape, t.dtype));
    // what leaves the level: values read elsewhere, and the graph's outputs
    const outs: Record<string, Tensor> = {};
    const names = new Map<string, string>();
    for (const t of members) {
      const elsewhere = [...(readers.get(t.id) ?? [])].some((r) => r !== `L${l}`);
      if (elsewhere || finals.has(t.id)) {
        outs[cutName(t)] = rebuilt.get(t.id)!;
        names.set(cutName(t), cutName(t));
      }
    }
    const graph = await compileOnnx(outs, opts);
    steps.push({ kind: 'graph', graph, outputs: names });
    keyParts.push(`G ${l} ${graph.key}`);
  }

  const key = createHash('sha1')
    .update([...keyParts, ...drawn.map((t) => `${pos.get(t.id)} ${JSON.stringify(t.attrs)}`)].join('\n'))
    .digest('hex');
  const noise = drawn.map((t): DrawnNoise => {
    const a = t.attrs as { seed: number; std: number; batchAxis: number; batch: number };
    return {
      name: cutName(t),
      seed: a.seed,
      std: a.std,
      layout: noiseLayout(t.shape, a.batchAxis, a.batch),
      shape: t.shape,
    };
  });
  return new SegmentedGraph(steps, noise, outputs, cutName, key);
}

/** The chain of ONNX graphs and host kernels, run as one graph. */
class SegmentedGraph implements RunnableGraph {
  readonly inputs: readonly GraphInput[];
  readonly outputs: readonly GraphOutput[];

  constructor(
    private readonly steps: readonly Step[],
    private readonly noise: readonly DrawnNoise[],
    private readonly results: Readonly<Record<string, Tensor>>,
    private readonly cutName: (t: Tensor) => string,
    readonly key: string,
  ) {
    // what a caller sees: the inputs and params of every graph and kernel (not the cut values)
    const seen = new Map<string, GraphInput>();
    for (const s of steps) {
      const ins =
        s.kind === 'graph'
          ? s.graph.inputs.filter((i) => !i.name.startsWith('cut'))
          : s.op.inputs.flatMap((i): GraphInput[] => leafInput(i));
      for (const i of ins) if (!seen.has(i.name)) seen.set(i.name, i);
    }
    this.inputs = [...seen.values()];
    this.outputs = Object.entries(results).map(([name, t]) => ({ name, shape: t.shape, dtype: t.dtype }));
    // the step after which each crossing value is read no more (the results: never)
    steps.forEach((s, k) => {
      const reads = s.kind === 'host' ? s.op.inputs.map(cutName) : s.graph.inputs.map((i) => i.name);
      for (const name of reads) this.lastRead.set(name, k);
    });
    for (const t of Object.values(results)) this.lastRead.set(cutName(t), Infinity);
  }

  private readonly lastRead = new Map<string, number>();

  /** Output buffers of the host kernels from the last run, by step, for the next run to reuse. */
  private readonly buffers = new Map<number, HostArray['data']>();
  /** Runs go one at a time: they share those buffers. */
  private queue: Promise<unknown> = Promise.resolve();

  async release(): Promise<void> {
    await this.queue;
    this.buffers.clear();
    for (const s of this.steps) if (s.kind === 'graph') await s.graph.release();
  }

  run(feeds: Readonly<Record<string, HostArray>> = {}, firstSample = 0): Promise<Record<string, HostArray>> {
    const next = this.queue.then(() => this.runNow(feeds, firstSample));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async runNow(
    feeds: Readonly<Record<string, HostArray>>,
    firstSample: number,
  ): Promise<Record<string, HostArray>> {
    const known = new Set(this.inputs.map((i) => i.name));
    const unknown = Object.keys(feeds).filter((k) => !known.has(k));
    if (unknown.length)
      throw new GraphError('run', `unknown input(s) ${unknown.map((u) => `'${u}'`).join(', ')}`);
    const values = new Map<string, HostArray>();
    for (const d of this.noise) {
      const data = new Float32Array(numel(d.shape));
      drawNoise(data, d.layout, d.seed, d.std, firstSample);
      values.set(d.name, { dtype: 'float32', shape: d.shape, data });
    }
    const current = (t: Tensor): HostArray => {
      const v = values.get(this.cutName(t));
      if (v) return v;
      const a = t.attrs as { name?: string; value?: HostArray };
      if (t.op === 'input') {
        const fed = feeds[a.name!];
        if (!fed) throw new GraphError('run', `missing input '${a.name}'`);
        return fed;
      }
      if (t.op === 'param' || t.op === 'constant') return feeds[a.name ?? ''] ?? a.value!;
      throw new GraphError('run', `internal: value of ${t} is not available to the host kernel`);
    };
    for (const [k, s] of this.steps.entries()) {
      if (s.kind === 'host') {
        const a = s.op.attrs as { run: HostKernel; transient: boolean };
        const out = a.run(s.op.inputs.map(current), this.buffers.get(k), firstSample);
        // a result leaves the graph: its buffer is the caller's, never reused
        if (this.lastRead.get(s.name) !== Infinity && !a.transient) this.buffers.set(k, out.data);
        values.set(s.name, out);
      } else {
        const own: Record<string, HostArray> = {};
        for (const i of s.graph.inputs) {
          const v = i.name.startsWith('cut') ? values.get(i.name) : feeds[i.name];
          if (v) own[i.name] = v;
        }
        const out = await s.graph.run(own, firstSample);
        for (const [name] of s.outputs) values.set(name, out[name]!);
      }
      // drop what no later step reads: a run holds only the values still ahead of it
      for (const name of values.keys()) if ((this.lastRead.get(name) ?? -1) <= k) values.delete(name);
    }
    return Object.fromEntries(Object.entries(this.results).map(([name, t]) => [name, current(t)]));
  }
}

/** The caller-facing input a kernel's leaf input stands for (none for constants and drawn noise). */
function leafInput(t: Tensor): GraphInput[] {
  const a = t.attrs as { name?: string };
  if (t.op === 'input') return [{ name: a.name!, shape: t.shape, dtype: t.dtype }];
  if (t.op === 'param') return [{ name: a.name!, shape: t.shape, dtype: t.dtype, param: t }];
  return [];
}
