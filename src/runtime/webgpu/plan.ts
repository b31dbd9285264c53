/**
 * A graph as a list of GPU steps: elementwise chains fused into one kernel each, views (reshape,
 * stopGradient) free, noise drawn on the GPU (in the one chain that reads it, else into a
 * buffer), every other op its own kernel(s), host kernels without a WebGPU dispatch run on
 * values read back to the host.
 */
import { topoSort } from '../../graph/autodiff.js';
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import type { GpuKernel } from '../../graph/ops.js';
import { GraphError, numel, strides } from '../../graph/shape.js';
import { hostCall, type Tensor } from '../../graph/tensor.js';
import { fusedKernel, fusedOperand, inlineScalar, isElementwise } from './elementwise.js';
import { matmulKernel } from './matmul.js';
import {
  concatPieceKernel,
  gatherKernel,
  padKernel,
  scatterAddKernel,
  sliceKernel,
  transposeKernel,
  zerosKernel,
} from './movement.js';
import { noiseBuffer } from './noise.js';
import { randomKernel } from './random.js';
import { layerNormKernel, type ReduceKind, reduceKernel, softmaxKernel } from './reduce.js';
import { bufferOperand, type Operand } from './wgsl.js';

/** One dispatch: `spec` reads `inputs` and writes `output`'s buffer. */
export interface Dispatch {
  kind: 'dispatch';
  spec: KernelSpec;
  inputs: readonly Tensor[];
  output: Tensor;
}
/** A host kernel run on the host: its inputs read back, its output uploaded. */
export interface HostStep {
  kind: 'host';
  op: Tensor;
}
export type Step = Dispatch | HostStep;

const VIEWS = new Set(['reshape', 'stopGradient']);
/** Ops that read their one input through a fused elementwise chain, when one feeds it. */
const SINKS = new Set(['sum', 'mean', 'max', 'min', 'softmax', 'logSoftmax', 'transpose', 'slice']);
/** The elements a group's kernel computes its chain for: a sink's input's, else its result's. */
const span = (g: Tensor): number => (SINKS.has(g.op) ? g.inputs[0]!.size : g.size);
export const isView = (t: Tensor): boolean => VIEWS.has(t.op);
const isLeaf = (t: Tensor): boolean =>
  t.op === 'input' || t.op === 'param' || t.op === 'constant' || t.op === 'noise';

/** What a view shows (the tensor whose buffer it shares); other tensors are their own. */
export function source(t: Tensor): Tensor {
  let s = t;
  while (isView(s)) s = s.inputs[0]!;
  return s;
}

function append<V>(m: Map<number, V[]>, k: number, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

export interface Plan {
  order: readonly Tensor[];
  steps: readonly Step[];
}

/**
 * `maxInputs`: the most storage buffers a kernel may read (the device's limit less the output);
 * `wgsl`: the WGSL language features the device has (host kernels' dispatches may use them).
 */
export function planGraph(
  roots: readonly Tensor[],
  maxInputs: number,
  wgsl: ReadonlySet<string> = new Set(),
): Plan {
  const order = topoSort(roots);
  const outputs = new Set(roots.map((t) => t.id));
  const consumers = new Map<number, Tensor[]>();
  for (const t of order) for (const i of t.inputs) append(consumers, i.id, t);

  // fusion, consumers first: a value joins its consumers' group when only that group reads it
  // (through views too), it is no output, and it has as many elements as the group's result
  const group = new Map<number, Tensor>();
  const groupInputs = new Map<number, Set<number>>();
  const readers = (t: Tensor): Tensor[] | undefined => {
    const out: Tensor[] = [];
    for (const c of consumers.get(t.id) ?? []) {
      if (!isView(c)) out.push(c);
      else if (outputs.has(c.id)) return undefined;
      else {
        const more = readers(c);
        if (!more) return undefined;
        out.push(...more);
      }
    }
    return out;
  };
  const external = (t: Tensor): number[] => t.inputs.filter((u) => !inlineScalar(u)).map((u) => u.id);
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    if (SINKS.has(t.op)) {
      group.set(t.id, t);
      groupInputs.set(t.id, new Set([t.inputs[0]!.id]));
      continue;
    }
    if (isLeaf(t) || isView(t) || !isElementwise(t)) continue;
    const rs = outputs.has(t.id) ? undefined : readers(t);
    const g = rs?.length ? group.get(rs[0]!.id) : undefined;
    // noise is drawn in elementwise kernels only, where a thread draws a whole Philox block: in
    // a sink's kernel each element would run a Philox, which costs more than a buffer between
    const drawsNoise = SINKS.has(g?.op ?? '') && t.inputs.some((u) => source(u).op === 'noise');
    if (g && rs!.every((c) => group.get(c.id) === g) && numel(t.shape) === span(g) && !drawsNoise) {
      const ins = groupInputs.get(g.id)!;
      const shown = viewsOf(t, consumers);
      const next = new Set([...ins].filter((id) => !shown.has(id)));
      for (const id of external(t)) next.add(id);
      if (next.size <= maxInputs) {
        group.set(t.id, g);
        groupInputs.set(g.id, next);
        continue;
      }
    }
    group.set(t.id, t);
    groupInputs.set(t.id, new Set(external(t)));
  }

  // noise read by one elementwise chain only is drawn in its kernel; other noise is drawn into
  // a buffer once per run (noiseKernel) before its readers
  const drawnIn = new Set<number>();
  for (const t of order) {
    if (t.op !== 'noise' || outputs.has(t.id)) continue;
    const rs = readers(t);
    const g = rs?.length ? group.get(rs[0]!.id) : undefined;
    if (g && !SINKS.has(g.op) && rs!.every((r) => group.get(r.id) === g)) drawnIn.add(t.id);
  }

  const members = new Map<number, Tensor[]>();
  for (const t of order) {
    const g = group.get(t.id);
    if (g) append(members, g.id, t);
  }
  const steps: Step[] = [];
  for (const t of order) {
    if (t.op === 'noise' && !drawnIn.has(t.id)) {
      steps.push({ kind: 'dispatch', spec: noiseBuffer(t), inputs: [], output: t });
    }
    if (isLeaf(t) || isView(t)) continue;
    const g = group.get(t.id);
    if (g) {
      if (g !== t) continue;
      const all = members.get(t.id)!;
      const sink = SINKS.has(t.op);
      const ms = sink ? all.slice(0, -1) : all;
      if (!ms.length) {
        steps.push(...opSteps(t, wgsl));
        continue;
      }
      const own = new Set(ms.map((m) => m.id));
      const ins = new Map<number, Tensor>();
      for (const m of ms)
        for (const u of m.inputs)
          if (!own.has(source(u).id) && !inlineScalar(u) && !drawnIn.has(source(u).id)) ins.set(u.id, u);
      steps.push({
        kind: 'dispatch',
        spec: sink
          ? sinkKernel(t, fusedOperand(ms, [...ins.values()], source))
          : fusedKernel(ms, [...ins.values()], source),
        inputs: [...ins.values()],
        output: t,
      });
      continue;
    }
    steps.push(...opSteps(t, wgsl));
  }
  return { order, steps };
}

/** The ids of `t` and of the views that show it. */
function viewsOf(t: Tensor, consumers: ReadonlyMap<number, Tensor[]>): Set<number> {
  const ids = new Set([t.id]);
  const stack = [t];
  while (stack.length) {
    for (const c of consumers.get(stack.pop()!.id) ?? []) {
      if (isView(c) && !ids.has(c.id)) {
        ids.add(c.id);
        stack.push(c);
      }
    }
  }
  return ids;
}

/** A reduction, softmax, transpose or slice of `t`'s input, read through `x` (a buffer or a fused chain). */
function sinkKernel(t: Tensor, x: Operand): KernelSpec {
  const input = t.inputs[0]!;
  if (t.op === 'transpose')
    return transposeKernel(input.shape, (t.attrs as { perm: number[] }).perm, t.dtype, x);
  if (t.op === 'slice')
    return sliceKernel(input.shape, (t.attrs as { starts: number[] }).starts, t.shape, t.dtype, x);
  if (t.op === 'softmax' || t.op === 'logSoftmax')
    return softmaxKernel(input.shape, (t.attrs as { axis: number }).axis, t.op === 'logSoftmax', x);
  return reduceKernel(t.op as ReduceKind, input.shape, (t.attrs as { axes: number[] }).axes, t.dtype, x);
}

/** The kernels of one op that is neither elementwise nor a view. */
function opSteps(t: Tensor, wgsl: ReadonlySet<string>): Step[] {
  const one = (spec: KernelSpec, inputs: readonly Tensor[]): Step => ({
    kind: 'dispatch',
    spec,
    inputs,
    output: t,
  });
  const x = t.inputs[0]!;
  const a = t.attrs as Record<string, unknown>;
  switch (t.op) {
    case 'sum':
    case 'mean':
    case 'max':
    case 'min':
    case 'softmax':
    case 'logSoftmax':
    case 'transpose':
    case 'slice':
      return [one(sinkKernel(t, bufferOperand(x.dtype)), [x])];
    case 'layerNorm':
      return [one(layerNormKernel(x.shape, a['eps'] as number), t.inputs)];
    case 'matmul': {
      const b = t.inputs[1]!;
      const [k, n] = b.shape.slice(-2) as [number, number];
      // one matrix for the whole batch: the batch's rows are one [rows, K] matrix (no partial
      // tiles per batch entry)
      if (numel(b.shape.slice(0, -2)) === 1 && x.rank > 2) {
        const rows = x.size / k;
        return [one(matmulKernel([rows, k], [k, n], [rows, n]), t.inputs)];
      }
      return [one(matmulKernel(x.shape, b.shape, t.shape), t.inputs)];
    }
    case 'pad':
      return [one(padKernel(x.shape, a['before'] as number[], t.shape, t.dtype), [x])];
    case 'concat': {
      const axis = a['axis'] as number;
      let at = 0;
      return t.inputs.map((piece) => {
        at += piece.shape[axis]!;
        return one(concatPieceKernel(piece.shape, axis, at - piece.shape[axis]!, t.shape, t.dtype), [piece]);
      });
    }
    case 'gather':
      return [one(gatherKernel(x.shape, t.inputs[1]!.shape, a['axis'] as number, t.dtype), t.inputs)];
    case 'scatterAdd': {
      if (t.dtype !== 'float32')
        throw new GraphError('scatterAdd', `WebGPU adds float32 only, got ${t.dtype}`);
      const zeros = one(zerosKernel(t.size), []);
      const inner = strides(t.shape)[0] ?? 1;
      return [zeros, one(scatterAddKernel(x.size, inner, t.shape[0]!), t.inputs)];
    }
    case 'randomNormal':
      return [
        one(
          randomKernel(t.shape, { kind: 'normal', ...(a as { seed: number; mean: number; std: number }) }),
          [],
        ),
      ];
    case 'randomUniform':
      return [
        one(
          randomKernel(t.shape, { kind: 'uniform', ...(a as { seed: number; low: number; high: number }) }),
          [],
        ),
      ];
    case 'host': {
      const gpu = a['gpu'] as GpuKernel | undefined;
      if (!gpu) return [{ kind: 'host', op: t }];
      const spec = gpu(
        t.inputs.map((i) => i.shape),
        wgsl,
      );
      if (!spec.before) return [one(spec, t.inputs)];
      // the transformed input: a value of the plan alone, which no op of the graph reads (its
      // key's first word names its dispatch in profiles)
      const { input, spec: first, words } = spec.before;
      const from = t.inputs[input]!;
      const key = a['key'] as string;
      const made = hostCall(`${key.split(' ')[0]}:input${input} ${key}`, [from], [words], () => {
        throw new GraphError('webgpu', 'a transformed input is made on the GPU only');
      });
      return [
        { kind: 'dispatch', spec: first, inputs: [from], output: made },
        one(
          spec,
          t.inputs.map((u, i) => (i === input ? made : u)),
        ),
      ];
    }
    default:
      throw new GraphError(t.op, 'the WebGPU runtime has no kernel for it');
  }
}
