/**
 * Host arrays: what goes into and comes out of a compiled graph (typed, fp32 for floats),
 * and the float64 arrays of the reference interpreter that tests check ONNX Runtime against.
 */
import { type DType, GraphError, numel, type Shape, strides } from './shape.js';

export type HostData = Float32Array | Int32Array | BigInt64Array | Uint8Array;
export interface HostArray {
  readonly dtype: DType;
  readonly shape: Shape;
  readonly data: HostData;
}

export function hostArray(dtype: DType, shape: Shape, data?: HostData): HostArray {
  const n = numel(shape);
  const buf = data ?? allocate(dtype, n);
  if (buf.length !== n) {
    throw new GraphError('hostArray', `data has ${buf.length} elements, shape [${shape}] needs ${n}`);
  }
  return { dtype, shape: [...shape], data: buf };
}

/** A rank-0 array holding `v` as `dtype`. */
export function scalarArray(v: number, dtype: DType): HostArray {
  const data =
    dtype === 'float32'
      ? Float32Array.of(v)
      : dtype === 'int32'
        ? Int32Array.of(v)
        : dtype === 'int64'
          ? BigInt64Array.of(BigInt(v))
          : Uint8Array.of(v ? 1 : 0);
  return { dtype, shape: [], data };
}

export const f32 = (shape: Shape, data?: ArrayLike<number>): HostArray =>
  hostArray('float32', shape, data ? Float32Array.from(data) : undefined);
export const i32 = (shape: Shape, data?: ArrayLike<number>): HostArray =>
  hostArray('int32', shape, data ? Int32Array.from(data) : undefined);

/** The values as plain numbers (int64 converted). */
export const toNumbers = (a: HostArray): number[] => Array.from(a.data as ArrayLike<number | bigint>, Number);

function allocate(dtype: DType, n: number): HostData {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'int64':
      return new BigInt64Array(n);
    case 'bool':
      return new Uint8Array(n);
  }
}

/** A float64 array of the reference interpreter (integers and booleans are stored as numbers). */
export interface RefArray {
  readonly shape: Shape;
  readonly data: Float64Array;
}

export const ref = (shape: Shape, data?: ArrayLike<number>): RefArray => ({
  shape: [...shape],
  data: data ? Float64Array.from(data) : new Float64Array(numel(shape)),
});

export function toRef(a: HostArray): RefArray {
  const d = a.data;
  return ref(a.shape, d instanceof BigInt64Array ? Array.from(d, Number) : d);
}

export function fromRef(a: RefArray, dtype: DType): HostArray {
  const out = hostArray(dtype, a.shape);
  const d = out.data;
  if (d instanceof BigInt64Array) {
    for (let i = 0; i < d.length; i++) d[i] = BigInt(Math.round(a.data[i]!));
  } else d.set(a.data);
  return out;
}

/** Offset into `from` for each flat index of `to`, with broadcasting (stride 0 on size-1 dims). */
function broadcastOffsets(from: Shape, to: Shape): Int32Array {
  const n = numel(to);
  const st = strides(from);
  const pad = to.length - from.length;
  const bst = to.map((_, i) => (i < pad || from[i - pad] === 1 ? 0 : st[i - pad]!));
  const out = new Int32Array(n);
  const idx = new Array<number>(to.length).fill(0);
  let off = 0;
  for (let i = 0; i < n; i++) {
    out[i] = off;
    for (let ax = to.length - 1; ax >= 0; ax--) {
      idx[ax]!++;
      off += bst[ax]!;
      if (idx[ax]! < to[ax]!) break;
      off -= bst[ax]! * to[ax]!;
      idx[ax] = 0;
    }
  }
  return out;
}

export function mapRef(a: RefArray, f: (x: number) => number): RefArray {
  return { shape: a.shape, data: a.data.map(f) };
}

export function zipRef(shape: Shape, arrays: readonly RefArray[], f: (...xs: number[]) => number): RefArray {
  const offs = arrays.map((a) => broadcastOffsets(a.shape, shape));
  const out = ref(shape);
  const xs = new Array<number>(arrays.length);
  for (let i = 0; i < out.data.length; i++) {
    for (let k = 0; k < arrays.length; k++) xs[k] = arrays[k]!.data[offs[k]![i]!]!;
    out.data[i] = f(...xs);
  }
  return out;
}

/** Reduces `axes` (already normalised) with `f`, starting each group from `init`. */
export function reduceRef(
  a: RefArray,
  axes: readonly number[],
  keepdims: boolean,
  init: number,
  f: (acc: number, x: number) => number,
): RefArray {
  const kept = a.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = ref(kept, new Array(numel(kept)).fill(init));
  const offs = broadcastOffsets(kept, a.shape);
  for (let i = 0; i < a.data.length; i++) out.data[offs[i]!] = f(out.data[offs[i]!]!, a.data[i]!);
  return keepdims ? out : { shape: a.shape.filter((_, i) => !axes.includes(i)), data: out.data };
}

export function transposeRef(a: RefArray, perm: readonly number[]): RefArray {
  const shape = perm.map((p) => a.shape[p]!);
  const st = strides(a.shape);
  const permuted = perm.map((p) => st[p]!);
  const out = ref(shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.data.length; i++) {
    let off = 0;
    for (let k = 0; k < shape.length; k++) off += idx[k]! * permuted[k]!;
    out.data[i] = a.data[off]!;
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      if (++idx[ax]! < shape[ax]!) break;
      idx[ax] = 0;
    }
  }
  return out;
}

/** Batched matmul with broadcast batch dims; a: [..., M, K], b: [..., K, N]. */
export function matmulRef(a: RefArray, b: RefArray, outShape: Shape): RefArray {
  const r = outShape.length;
  const [m, n] = [outShape[r - 2]!, outShape[r - 1]!];
  const k = a.shape[a.shape.length - 1]!;
  const batch = outShape.slice(0, r - 2);
  const ao = broadcastOffsets([...a.shape.slice(0, -2)], batch);
  const bo = broadcastOffsets([...b.shape.slice(0, -2)], batch);
  const out = ref(outShape);
  for (let bi = 0; bi < ao.length; bi++) {
    const aBase = ao[bi]! * m * k;
    const bBase = bo[bi]! * k * n;
    const oBase = bi * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < k; t++) s += a.data[aBase + i * k + t]! * b.data[bBase + t * n + j]!;
        out.data[oBase + i * n + j] = s;
      }
    }
  }
  return out;
}

/** Copies the block of `src` at `starts` (per axis) into a new array of `shape`. */
export function sliceRef(src: RefArray, starts: readonly number[], shape: Shape): RefArray {
  const out = ref(shape);
  const st = strides(src.shape);
  const idx = new Array<number>(shape.length).fill(0);
  for (let i = 0; i < out.data.length; i++) {
    let off = 0;
    for (let k = 0; k < shape.length; k++) off += (idx[k]! + starts[k]!) * st[k]!;
    out.data[i] = src.data[off]!;
    for (let ax = shape.length - 1; ax >= 0; ax--) {
      if (++idx[ax]! < shape[ax]!) break;
      idx[ax] = 0;
    }
  }
  return out;
}

/** Adds `src` into `dst` at `starts` (per axis), in place. */
export function addBlockRef(dst: RefArray, src: RefArray, starts: readonly number[]): void {
  const st = strides(dst.shape);
  const idx = new Array<number>(src.shape.length).fill(0);
  for (let i = 0; i < src.data.length; i++) {
    let off = 0;
    for (let k = 0; k < src.shape.length; k++) off += (idx[k]! + starts[k]!) * st[k]!;
    dst.data[off]! += src.data[i]!;
    for (let ax = src.shape.length - 1; ax >= 0; ax--) {
      if (++idx[ax]! < src.shape[ax]!) break;
      idx[ax] = 0;
    }
  }
}
