/** Dtypes, shapes and the errors the graph raises when they do not fit. */
export type DType = 'float32' | 'int32' | 'int64' | 'bool';
export type Shape = readonly number[];

/**
 * A misuse of the graph engine (building or running a graph): a bug in the code that uses it,
 * not a user's input, so it names the op (or `run`) and the shapes and values involved.
 */
export class GraphError extends Error {
  constructor(op: string, message: string) {
    super(`${op}: ${message}`);
    this.name = 'GraphError';
  }
}

export const fmtShape = (s: Shape): string => `[${s.join(', ')}]`;

export const numel = (s: Shape): number => s.reduce((a, b) => a * b, 1);

/** Row-major strides of a shape. */
export function strides(s: Shape): number[] {
  const out = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    out[i] = acc;
    acc *= s[i]!;
  }
  return out;
}

/** NumPy broadcasting of two shapes; throws naming the op and both shapes. */
export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new GraphError(op, `shapes ${fmtShape(a)} and ${fmtShape(b)} do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

export const sameShape = (a: Shape, b: Shape): boolean =>
  a.length === b.length && a.every((d, i) => d === b[i]);

/** Returns `shape` if every dim is an integer ≥ 0, else throws naming the op. */
export function checkShape(op: string, shape: Shape): Shape {
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new GraphError(op, `invalid shape ${fmtShape(shape)}: dims must be integers ≥ 0`);
    }
  }
  return shape;
}
