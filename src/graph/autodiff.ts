/**
 * Reverse-mode autodiff over the graph: walks the nodes between the output and the
 * requested leaves in reverse topological order, calls each op's VJP, reduces gradients of
 * broadcast inputs back to their shapes and sums gradients that meet.
 */
import { OPS } from './ops.js';
import { fmtShape, GraphError, type Shape, sameShape } from './shape.js';
import { scalar, type Tensor } from './tensor.js';

/**
 * Nodes reachable from `roots`, inputs before users, and each after the nodes `after` names for
 * it (ordering only: they need not be among its inputs). Throws where `after` makes a cycle.
 */
export function topoSort(roots: readonly Tensor[], after?: (t: Tensor) => readonly Tensor[]): Tensor[] {
  const seen = new Set<number>();
  const open = new Set<number>();
  const order: Tensor[] = [];
  const before = (t: Tensor): readonly Tensor[] => {
    const more = after?.(t);
    return more?.length ? [...more, ...t.inputs] : t.inputs;
  };
  // iterative DFS: transformer graphs are deep enough to overflow a recursive one
  const stack: [Tensor, number, readonly Tensor[]][] = roots.map((r) => [r, 0, before(r)]);
  while (stack.length) {
    const top = stack[stack.length - 1]!;
    const [t, i, deps] = top;
    if (i === 0) {
      if (seen.has(t.id)) {
        stack.pop();
        continue;
      }
      if (open.has(t.id)) throw new GraphError('topoSort', `${t} is ordered after itself`);
      open.add(t.id);
    }
    if (i < deps.length) {
      top[1]++;
      const next = deps[i]!;
      if (!seen.has(next.id)) stack.push([next, 0, before(next)]);
    } else {
      stack.pop();
      open.delete(t.id);
      if (!seen.has(t.id)) {
        seen.add(t.id);
        order.push(t);
      }
    }
  }
  return order;
}

/** Sums `g` over the axes along which a tensor of `shape` was broadcast to g's shape. */
export function unbroadcast(g: Tensor, shape: Shape): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.rank - shape.length;
  if (lead < 0)
    throw new GraphError(
      'grad',
      `gradient ${fmtShape(g.shape)} is smaller than its input ${fmtShape(shape)}`,
    );
  const axes = g.shape.flatMap((d, i) => (i < lead || (shape[i - lead] === 1 && d !== 1) ? [i] : []));
  return g.sum(axes, true).reshape(shape);
}

/**
 * Gradients of `y` with respect to each of `wrt` (zeros where `y` does not depend on it).
 * `y` must be a scalar unless `seed` (the upstream gradient, y's shape) is given.
 */
export function grad(y: Tensor, wrt: readonly Tensor[], seed?: Tensor): Tensor[] {
  if (!seed && y.size !== 1)
    throw new GraphError('grad', `output ${fmtShape(y.shape)} is not a scalar; pass a seed`);
  if (seed && !sameShape(seed.shape, y.shape)) {
    throw new GraphError('grad', `seed ${fmtShape(seed.shape)} does not match output ${fmtShape(y.shape)}`);
  }
  const order = topoSort([y]);
  // only nodes on a path from a wanted leaf to y need gradients
  const wanted = new Set(wrt.map((t) => t.id));
  const onPath = new Set<number>();
  for (const t of order) {
    if (wanted.has(t.id) || t.inputs.some((i) => onPath.has(i.id))) onPath.add(t.id);
  }
  const grads = new Map<number, Tensor>([[y.id, seed ?? scalar(1).expand(y.shape)]]);
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    const g = grads.get(t.id);
    if (!g || t.inputs.length === 0 || !t.inputs.some((i) => onPath.has(i.id))) continue;
    const def = OPS[t.op];
    if (!def.vjp) continue;
    // biome-ignore lint/suspicious/noExplicitAny: the table is indexed by a union of ops
    const gs = (def.vjp as any)(g, t.inputs, t, t.attrs) as readonly (Tensor | null)[];
    if (gs.length !== t.inputs.length) {
      throw new GraphError(t.op, `VJP returned ${gs.length} gradients for ${t.inputs.length} inputs`);
    }
    t.inputs.forEach((inp, i) => {
      const gi = gs[i];
      if (!gi || !onPath.has(inp.id)) return;
      const reduced = unbroadcast(gi, inp.shape);
      const prev = grads.get(inp.id);
      grads.set(inp.id, prev ? prev.add(reduced) : reduced);
    });
  }
  return wrt.map((w) => grads.get(w.id) ?? scalar(0, w.dtype).expand(w.shape));
}
