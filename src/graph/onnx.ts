/**
 * Lowers a graph to an ONNX model in memory. Inputs become graph inputs; params become graph
 * inputs (fed at every run, so new weights need no recompilation) or, when baked,
 * initialisers (which lets ONNX Runtime pre-pack them); noise leaves become graph inputs the
 * runtime fills at every run (util/philox.ts); constants become initialisers.
 */
import { createHash } from 'node:crypto';
import { type NoiseLayout, noiseLayout } from '../util/philox.js';
import { topoSort } from './autodiff.js';
import { type HostArray, scalarArray } from './ndarray.js';
import { ModelProto, ONNX_ATTR, ONNX_DTYPE } from './onnx-schema.js';
import { type Lowering, type OnnxAttr, OPS } from './ops.js';
import { type DType, GraphError, type Shape } from './shape.js';
import type { Tensor } from './tensor.js';

export const OPSET = 20;
const IR_VERSION = 9;

export interface GraphInput {
  readonly name: string;
  readonly shape: Shape;
  readonly dtype: DType;
  /** Set when the input is a param: its current value is fed unless the caller overrides it. */
  readonly param?: Tensor;
  /** Set when the input is noise: the runtime fills it from the seed and the run's samples at every run. */
  readonly noise?: { readonly seed: number; readonly std: number; readonly layout: NoiseLayout };
}
export interface GraphOutput {
  readonly name: string;
  readonly shape: Shape;
  readonly dtype: DType;
}
export interface LoweredGraph {
  /** The ONNX ModelProto bytes. */
  readonly model: Uint8Array;
  /** Identifies the graph's structure, shapes and embedded values (the session cache key). */
  readonly key: string;
  readonly inputs: readonly GraphInput[];
  readonly outputs: readonly GraphOutput[];
}
export interface LowerOptions {
  /** Params become initialisers instead of inputs (inference; the values are captured now). */
  bakeParams?: boolean;
}

type Proto = Record<string, unknown>;

const bytesOf = (a: HostArray): Uint8Array =>
  new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);

function attrProto(name: string, v: OnnxAttr): Proto {
  if ('f' in v) return { name, type: ONNX_ATTR.float, f: v.f };
  if ('i' in v) return { name, type: ONNX_ATTR.int, i: v.i };
  if ('s' in v) return { name, type: ONNX_ATTR.string, s: new TextEncoder().encode(v.s) };
  if ('ints' in v) return { name, type: ONNX_ATTR.ints, ints: [...v.ints] };
  if ('g' in v) return { name, type: ONNX_ATTR.graph, g: v.g };
  return { name, type: ONNX_ATTR.floats, floats: [...v.floats] };
}

const valueInfo = (name: string, shape: Shape, dtype: DType): Proto => ({
  name,
  type: { tensorType: { elemType: ONNX_DTYPE[dtype], shape: { dim: shape.map((d) => ({ dimValue: d })) } } },
});

/**
 * The scope each node is emitted in: '' (the main graph) or `${op id}:${input}` for the
 * subgraph of a lazy input, holding the nodes that only that input needs (innermost scope
 * wins where lazy ops nest). Leaves always stay in the main graph.
 */
function scopesOf(order: readonly Tensor[], outputs: readonly Tensor[]): Map<number, string> {
  const users = new Map<number, { t: Tensor; slot: number }[]>();
  for (const t of order) {
    t.inputs.forEach((i, slot) => {
      const u = users.get(i.id) ?? [];
      u.push({ t, slot });
      users.set(i.id, u);
    });
  }
  const isOutput = new Set(outputs.map((t) => t.id));
  const position = new Map(order.map((t, k) => [t.id, k]));
  const scope = new Map<number, string>();
  // outer lazy ops come later in topological order: visit them first, inner ones overwrite
  for (let k = order.length - 1; k >= 0; k--) {
    const op = order[k]!;
    const lazy = OPS[op.op].lazy;
    if (!lazy) continue;
    for (const slot of lazy) {
      const start = op.inputs[slot]!;
      const only = users.get(start.id)!.every((u) => u.t === op && u.slot === slot);
      if (OPS[start.op].leaf || isOutput.has(start.id) || !only) continue;
      // a node joins once every use of it is by a member (walking up from start: only the cone
      // and its border are visited)
      const cone = new Map<number, Tensor>([[start.id, start]]);
      const uses = new Map<number, number>();
      const stack = [start];
      while (stack.length) {
        for (const i of stack.pop()!.inputs) {
          if (OPS[i.op].leaf || isOutput.has(i.id) || cone.has(i.id)) continue;
          const n = (uses.get(i.id) ?? 0) + 1;
          uses.set(i.id, n);
          if (n === users.get(i.id)!.length) {
            cone.set(i.id, i);
            stack.push(i);
          }
        }
      }
      // a view of a value outside stays outside (in order, so chains of views follow)
      const members = [...cone.values()].sort((a, b) => position.get(a.id)! - position.get(b.id)!);
      for (const t of members) {
        if (OPS[t.op].view && !t.inputs.some((i) => cone.has(i.id))) cone.delete(t.id);
      }
      for (const id of cone.keys()) scope.set(id, `${op.id}:${slot}`);
    }
  }
  return scope;
}

/** Every value name the nodes read, in branches too. */
function namesRead(nodes: readonly Proto[], into = new Set<string>()): Set<string> {
  for (const n of nodes) {
    for (const i of n['input'] as string[]) into.add(i);
    for (const a of (n['attribute'] as Proto[] | undefined) ?? []) {
      const g = a['g'] as Proto | undefined;
      if (g) namesRead(g['node'] as Proto[], into);
    }
  }
  return into;
}

export function lowerToOnnx(
  outputs: Readonly<Record<string, Tensor>>,
  opts: LowerOptions = {},
): LoweredGraph {
  let nodes: Proto[] = [];
  const initializers: Proto[] = [];
  const inputs: GraphInput[] = [];
  const inputProtos: Proto[] = [];
  const names = new Map<number, string>();
  const leafNames = new Map<string, Tensor>();
  const constCache = new Map<string, string>();
  const keyParts: string[] = [];
  let counter = 0;

  const addInitializer = (name: string, value: HostArray, identity: string): string => {
    initializers.push({
      name,
      dims: [...value.shape],
      dataType: ONNX_DTYPE[value.dtype],
      rawData: bytesOf(value),
    });
    keyParts.push(`I ${name} ${value.dtype}[${value.shape}] ${identity}`);
    return name;
  };
  const constant = (value: HostArray): string => {
    const raw = bytesOf(value);
    const hash = createHash('sha1').update(raw).digest('hex');
    const key = `${value.dtype}[${value.shape}]${hash}`;
    let name = constCache.get(key);
    if (!name) {
      name = addInitializer(`c${constCache.size}`, value, hash);
      constCache.set(key, name);
    }
    return name;
  };
  const o: Lowering = {
    node(opType, ins, attrs = {}) {
      const out = `n${counter++}`;
      const attribute = Object.entries(attrs).map(([k, v]) => attrProto(k, v));
      nodes.push({ opType, input: [...ins], output: [out], name: out, attribute });
      keyParts.push(`N ${opType} ${ins.join(',')} ${JSON.stringify(attrs)}`);
      return out;
    },
    ints: (values) =>
      constant({ dtype: 'int64', shape: [values.length], data: BigInt64Array.from(values, BigInt) }),
    scalar: (v, dtype) => constant(scalarArray(v, dtype)),
    constant,
    branch(index) {
      const t = current!;
      const key = `${t.id}:${index}`;
      const outer = nodes;
      nodes = [];
      keyParts.push(`B ${index}`);
      for (const s of byScope.get(key) ?? []) emit(s);
      const res = t.inputs[index]!;
      // a value computed in the branch is its output; one from outside passes through Identity
      let out = names.get(res.id)!;
      if (scopes.get(res.id) !== key) {
        out = `n${counter++}`;
        nodes.push({ opType: 'Identity', input: [names.get(res.id)!], output: [out], name: out });
      }
      keyParts.push(`E ${out}`);
      const g = { name: `branch${out}`, node: nodes, output: [valueInfo(out, res.shape, res.dtype)] };
      nodes = outer;
      return { g };
    },
  };

  const noiseNames = new Map<string, string>();
  const declareLeaf = (name: string, t: Tensor): void => {
    const prev = leafNames.get(name);
    if (prev && prev !== t) {
      throw new GraphError(
        'lower',
        `two different leaves are named '${name}' ([${prev.shape}] and [${t.shape}])`,
      );
    }
    leafNames.set(name, t);
  };

  const order = topoSort(Object.values(outputs));
  const scopes = scopesOf(order, Object.values(outputs));
  const byScope = new Map<string, Tensor[]>();
  for (const t of order) {
    const s = scopes.get(t.id);
    if (s === undefined) continue;
    const list = byScope.get(s) ?? [];
    list.push(t);
    byScope.set(s, list);
  }
  /** The op being lowered (what `branch` refers to). */
  let current: Tensor | undefined;
  const emit = (t: Tensor): void => {
    const ins = t.inputs.map((i) => names.get(i.id)!);
    const outer = current;
    current = t;
    // biome-ignore lint/suspicious/noExplicitAny: the table is indexed by a union of ops
    names.set(t.id, (OPS[t.op].lower as any)(o, ins, t.attrs, t));
    current = outer;
  };

  for (const t of order) {
    const a = t.attrs as Record<string, unknown>;
    if (t.op === 'input') {
      const name = a['name'] as string;
      // a forward pass built twice (an ideal reference beside the network under test) reads one input
      const prev = leafNames.get(name);
      if (prev?.op === 'input' && prev.dtype === t.dtype && String(prev.shape) === String(t.shape)) {
        names.set(t.id, name);
        continue;
      }
      declareLeaf(name, t);
      inputs.push({ name, shape: t.shape, dtype: t.dtype });
      inputProtos.push(valueInfo(name, t.shape, t.dtype));
      keyParts.push(`in ${name} ${t.dtype}[${t.shape}]`);
      names.set(t.id, name);
    } else if (t.op === 'param') {
      const name = a['name'] as string;
      declareLeaf(name, t);
      if (opts.bakeParams) {
        const value = a['value'] as HostArray;
        addInitializer(name, value, createHash('sha1').update(bytesOf(value)).digest('hex'));
      } else {
        inputs.push({ name, shape: t.shape, dtype: t.dtype, param: t });
        inputProtos.push(valueInfo(name, t.shape, t.dtype));
        keyParts.push(`p ${name} ${t.dtype}[${t.shape}]`);
      }
      names.set(t.id, name);
    } else if (t.op === 'noise') {
      // two leaves of the same attributes hold the same values: one input
      const same = `${a['seed']} ${a['std']} [${t.shape}] ${a['batchAxis']} ${a['batch']}`;
      const known = noiseNames.get(same);
      if (known) {
        names.set(t.id, known);
        continue;
      }
      // named by order of appearance, so a rebuilt graph keeps its session cache key
      const name = `noise${inputs.filter((i) => i.noise).length}`;
      noiseNames.set(same, name);
      const noise = {
        seed: a['seed'] as number,
        std: a['std'] as number,
        layout: noiseLayout(t.shape, a['batchAxis'] as number, a['batch'] as number),
      };
      declareLeaf(name, t);
      inputs.push({ name, shape: t.shape, dtype: t.dtype, noise });
      inputProtos.push(valueInfo(name, t.shape, t.dtype));
      keyParts.push(`z ${name} [${t.shape}] ${noise.seed} ${noise.std} ${a['batchAxis']} ${a['batch']}`);
      names.set(t.id, name);
    } else if (t.op === 'constant') {
      names.set(t.id, constant(a['value'] as HostArray));
    } else if (!scopes.has(t.id)) {
      emit(t);
    }
  }

  const outs: GraphOutput[] = [];
  const outputProtos: Proto[] = [];
  for (const [name, t] of Object.entries(outputs)) {
    if (leafNames.has(name)) throw new GraphError('lower', `output '${name}' has the name of an input`);
    nodes.push({ opType: 'Identity', input: [names.get(t.id)!], output: [name], name: `out_${name}` });
    keyParts.push(`O ${name} ${names.get(t.id)}`);
    outs.push({ name, shape: t.shape, dtype: t.dtype });
    outputProtos.push(valueInfo(name, t.shape, t.dtype));
  }

  // a constant an op's lowering replaced (sameRankConstants) is read by no node: ONNX Runtime
  // would warn about it at every session
  const read = namesRead(nodes);
  const model = ModelProto.encode({
    irVersion: IR_VERSION,
    producerName: 'xbar',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: {
      name: 'xbar',
      node: nodes,
      initializer: initializers.filter((i) => read.has(i['name'] as string)),
      input: inputProtos,
      output: outputProtos,
    },
  }).finish();
  const key = createHash('sha1').update(keyParts.join('\n')).digest('hex');
  return { model, key, inputs, outputs: outs };
}
