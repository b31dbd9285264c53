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
import { branchGates, type Gate } from './branches.js';
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

/**
 * One dispatch: `spec` reads `inputs` and writes `output`'s buffer; with a `gate`, only when the
 * gate's conditions hold (its output is then read by nothing that is not skipped or discarded).
 */
export interface Dispatch {
  kind: 'dispatch';
  spec: KernelSpec;
  inputs: readonly Tensor[];
  output: Tensor;
  gate?: Gate;
}
/** A host kernel run on the host: its inputs read back, its output uploaded. */
export interface HostStep {
  kind: 'host';
  op: Tensor;
}
/** Writes the dispatch arguments of the kernels of `gate` (branches.ts), before the first of them. */
export interface GateStep {
  kind: 'gate';
  gate: Gate;
}
export type Step = Dispatch | HostStep | GateStep;

const VIEWS = new Set(['reshape', 'stopGradient']);
/** Ops that read their one input through a fused elementwise chain, when one feeds it. */
const SINKS = new Set(['sum', 'mean', 'max', 'min', 'softmax', 'logSoftmax', 'transpose', 'slice']);
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
 * `maxInputs`: the most storage buffers a kernel may read (the device's limit less the output).
 * `lazyBranches`: a `cond`'s branches run only when taken (branches.ts), else both run and the
 * cond selects. `wgsl`: the WGSL language features the device has (host kernels' dispatches may
 * use them).
 */
export function planGraph(
  roots: readonly Tensor[],
  maxInputs: number,
  lazyBranches = true,
  wgsl: ReadonlySet<string> = new Set(),
): Plan {
  const { order, gates } = gatedOrder(roots, lazyBranches);
  // conditions stay in buffers of their own, where gate kernels read them
  const outputs = new Set([
    ...roots.map((t) => t.id),
    ...[...gates.values()].flatMap((g) => g.terms.map((c) => c.cond.id)),
  ]);
  const consumers = new Map<number, Tensor[]>();
  for (const t of order) for (const i of t.inputs) append(consumers, i.id, t);
  const { peaks, absorbed } = peakReductions(order, consumers, outputs);
  /** Sinks read their input through a fused chain; a peak's input is what its max and min read. */
  const sinkInput = (g: Tensor): Tensor | undefined =>
    peaks.get(g.id) ?? (SINKS.has(g.op) ? g.inputs[0] : undefined);
  /** The elements a group's kernel computes its chain for: a sink's input's, else its result's. */
  const span = (g: Tensor): number => (sinkInput(g) ?? g).size;

  // fusion, consumers first: a value joins its consumers' group when only that group reads it
  // (through views too), it is no output, and it has as many elements as the group's result, or
  // fewer, read broadcast by one elementwise reader, and draws no noise (it is then computed
  // again for each element that reads it, which costs less than a kernel of its own)
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
    const into = absorbed.get(t.id);
    if (into) {
      group.set(t.id, into);
      continue;
    }
    const input = sinkInput(t);
    if (input) {
      group.set(t.id, t);
      groupInputs.set(t.id, new Set([input.id]));
      continue;
    }
    if (isLeaf(t) || isView(t) || !isElementwise(t)) continue;
    const rs = outputs.has(t.id) ? undefined : readers(t);
    const g = rs?.length ? group.get(rs[0]!.id) : undefined;
    // noise is drawn in elementwise kernels only, where a thread draws a whole Philox block: in
    // a sink's kernel each element would run a Philox, which costs more than a buffer between
    const noisy = t.inputs.some((u) => source(u).op === 'noise');
    const fits =
      numel(t.shape) === span(g ?? t)
        ? !(noisy && g && sinkInput(g))
        : rs?.length === 1 && rs[0] !== g && !noisy;
    if (g && rs!.every((c) => group.get(c.id) === g) && fits) {
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
    if (g && !sinkInput(g) && rs!.every((r) => group.get(r.id) === g)) drawnIn.add(t.id);
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
      const input = sinkInput(t);
      const ms = input ? all.filter((m) => m !== t && !absorbed.has(m.id)) : all;
      const peak = peaks.get(t.id);
      if (!ms.length && !peak) {
        steps.push(...opSteps(t, wgsl));
        continue;
      }
      const own = new Set(ms.map((m) => m.id));
      const ins = new Map<number, Tensor>();
      for (const m of ms)
        for (const u of m.inputs)
          if (!own.has(source(u).id) && !inlineScalar(u) && !drawnIn.has(source(u).id)) ins.set(u.id, u);
      // a peak of a value in a buffer reads it there
      if (!ms.length) ins.set(peak!.id, peak!);
      const x = () => (ms.length ? fusedOperand(ms, [...ins.values()], source) : bufferOperand(peak!.dtype));
      steps.push({
        kind: 'dispatch',
        spec: peak
          ? peakKernel(t, peak, x())
          : input
            ? sinkKernel(t, x())
            : fusedKernel(ms, [...ins.values()], source),
        inputs: [...ins.values()],
        output: t,
      });
      continue;
    }
    steps.push(...opSteps(t, wgsl));
  }
  return { order, steps: withGates(steps, gates) };
}

/**
 * The graph's order, with each value a branch gates after its gate's conditions (the gate
 * kernel reads them before the value's kernels run), and the gates. Without lazy branches, or
 * where a condition would need a value it gates (no such graph is built), no gates.
 */
function gatedOrder(roots: readonly Tensor[], lazy: boolean) {
  const order = topoSort(roots);
  const none = { order, gates: new Map<number, Gate>() };
  if (!lazy || !order.some((t) => t.op === 'cond')) return none;
  const gates = branchGates(order, roots, source);
  if (!gates.size) return none;
  try {
    return { order: topoSort(roots, (t) => gates.get(t.id)?.terms.map((c) => c.cond) ?? []), gates };
  } catch {
    return none;
  }
}

/**
 * `steps` with each dispatch's gate (its output's), and each gate's kernel before its first
 * dispatch. A gate of one kernel stays ungated: its gate kernel would cost a dispatch too.
 */
function withGates(steps: readonly Step[], gates: ReadonlyMap<number, Gate>): Step[] {
  const gateOf = (s: Step) => (s.kind === 'dispatch' ? gates.get(s.output.id) : undefined);
  const count = new Map<Gate, number>();
  for (const s of steps) {
    const g = gateOf(s);
    if (g) count.set(g, (count.get(g) ?? 0) + 1);
  }
  const out: Step[] = [];
  const written = new Set<Gate>();
  for (const s of steps) {
    const gate = gateOf(s);
    if (!gate || count.get(gate)! < 2) {
      out.push(s);
      continue;
    }
    if (!written.has(gate)) {
      written.add(gate);
      out.push({ kind: 'gate', gate });
    }
    out.push({ ...(s as Dispatch), gate });
  }
  return out;
}

/**
 * max(max x, −min x) over the same axes (analog/dac.ts `peakMagnitude`), where nothing else
 * reads the max, the min or its negation: one reduction of |x|, which reads x once, not two.
 * → `peaks`, x by the id of each such maximum; `absorbed`, the maximum of each max, min and
 * negation it replaces.
 */
function peakReductions(
  order: readonly Tensor[],
  consumers: ReadonlyMap<number, Tensor[]>,
  outputs: ReadonlySet<number>,
) {
  const peaks = new Map<number, Tensor>();
  const absorbed = new Map<number, Tensor>();
  const only = (u: Tensor, t: Tensor) =>
    !outputs.has(u.id) && consumers.get(u.id)?.length === 1 && consumers.get(u.id)![0] === t;
  for (const t of order) {
    if (t.op !== 'maximum' || t.dtype !== 'float32') continue;
    const [a, b] = t.inputs as [Tensor, Tensor];
    const [hi, neg] = a.op === 'max' ? [a, b] : [b, a];
    const lo = neg.inputs[0];
    if (hi.op !== 'max' || neg.op !== 'neg' || lo?.op !== 'min' || hi.inputs[0] !== lo.inputs[0]) continue;
    if (JSON.stringify(hi.attrs) !== JSON.stringify(lo.attrs) || String(hi.shape) !== String(t.shape))
      continue;
    if (!only(hi, t) || !only(neg, t) || !only(lo, neg)) continue;
    peaks.set(t.id, hi.inputs[0]!);
    for (const u of [hi, neg, lo]) absorbed.set(u.id, t);
  }
  return { peaks, absorbed };
}

/** The kernel of a peak (`peakReductions`) of `x`, read through `operand`. */
function peakKernel(t: Tensor, x: Tensor, operand: Operand): KernelSpec {
  const hi = t.inputs.find((u) => u.op === 'max')!;
  const abs: Operand = { ...operand, at: (i) => `abs(${operand.at(i)})` };
  return reduceKernel('max', x.shape, (hi.attrs as { axes: number[] }).axes, t.dtype, abs);
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
