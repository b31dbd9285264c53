/**
 * The float64 reference interpreter: evaluates a graph in plain JavaScript with each op's
 * `ref` rule. Slow by design; tests check ONNX Runtime and gradients against it.
 */
import { topoSort } from './autodiff.js';
import { type HostArray, type RefArray, toRef } from './ndarray.js';
import { OPS } from './ops.js';
import { fmtShape, GraphError, sameShape } from './shape.js';
import type { Tensor } from './tensor.js';

/** Feeds may be host arrays or float64 reference arrays (for finite differences). */
export type RefFeeds = Readonly<Record<string, HostArray | RefArray>>;

export function evaluateRef(outputs: readonly Tensor[], feeds: RefFeeds = {}): RefArray[] {
  const values = new Map<number, RefArray>();
  for (const t of topoSort(outputs)) {
    const a = t.attrs as { name?: string };
    const fed = (t.op === 'input' || t.op === 'param') && a.name !== undefined ? feeds[a.name] : undefined;
    if (fed) {
      if (!sameShape(fed.shape, t.shape)) {
        throw new GraphError(
          'evaluateRef',
          `'${a.name}' fed ${fmtShape(fed.shape)}, needs ${fmtShape(t.shape)}`,
        );
      }
      values.set(t.id, 'dtype' in fed ? toRef(fed) : fed);
      continue;
    }
    const ins = t.inputs.map((i) => values.get(i.id)!);
    // biome-ignore lint/suspicious/noExplicitAny: the table is indexed by a union of ops
    values.set(t.id, (OPS[t.op].ref as any)(ins, t.attrs, t));
  }
  return outputs.map((o) => values.get(o.id)!);
}
