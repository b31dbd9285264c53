/**
 * Model weights by their Hugging Face names. A family's builder asks for each tensor with
 * the shape HF stores; the store reads it from a checkpoint (or draws it at random for
 * shape-only models), transposes Linear weights [out, in] → [in, out] once so the graph
 * computes x·W, and reports every missing, misshapen or unexpected tensor in one error.
 */
import { type HostArray, hostArray } from '../graph/ndarray.js';
import { fmtShape, numel, type Shape, sameShape } from '../graph/shape.js';
import { param, type Tensor } from '../graph/tensor.js';
import { InputError } from '../util/errors.js';
import type { Rng } from '../util/math.js';
import type { Dense, LayerWeights, Norm } from './encoder.js';

/** Where weights come from: a checkpoint's tensors in HF layout. */
export interface TensorSource {
  /** Names the source in errors (a file or folder). */
  readonly file: string;
  names(): string[];
  get(name: string): HostArray | undefined;
}

export type Init = 'normal' | 'ones' | 'zeros';

interface Entry {
  tensor: Tensor;
  /** HF's shape, when the stored value is a transposed (and reshaped) matrix. */
  hfShape?: Shape;
}

export class ParamStore {
  private readonly entries = new Map<string, Entry>();
  private readonly problems: string[] = [];

  /** From a checkpoint, or random (N(0, std²) matrices, unit LayerNorm) when `source` is an Rng. */
  constructor(private readonly source: TensorSource | { rng: Rng; std: number }) {}

  /** A tensor kept in HF layout (embeddings, biases, LayerNorm, tokens). */
  tensor(name: string, shape: Shape, init: Init = 'normal'): Tensor {
    return this.take(name, shape, init, false);
  }

  /**
   * A Linear weight HF stores as [out, in], returned as [in, out] for x·W. A conv kernel
   * [out, C, kh, kw] read as a linear map of flattened patches passes its `hfShape`.
   */
  linear(name: string, out: number, inp: number, hfShape: Shape = [out, inp]): Tensor {
    return this.take(name, hfShape, 'normal', true);
  }

  private take(name: string, hfShape: Shape, init: Init, transpose: boolean): Tensor {
    const known = this.entries.get(name);
    if (known) return known.tensor;
    let value: HostArray;
    if ('rng' in this.source) {
      value = hostArray(
        'float32',
        hfShape,
        initValues(numel(hfShape), init, this.source.rng, this.source.std),
      );
    } else {
      const v = this.source.get(name);
      if (!v) {
        this.problems.push(`missing tensor '${name}' ${fmtShape(hfShape)}`);
        value = hostArray('float32', hfShape);
      } else if (!sameShape(v.shape, hfShape)) {
        this.problems.push(`tensor '${name}' is ${fmtShape(v.shape)}, the config needs ${fmtShape(hfShape)}`);
        value = hostArray('float32', hfShape);
      } else if (v.dtype !== 'float32') {
        this.problems.push(`tensor '${name}' is ${v.dtype}, needs a float type`);
        value = hostArray('float32', hfShape);
      } else {
        value = v;
      }
    }
    if (!transpose) {
      const tensor = param(name, value);
      this.entries.set(name, { tensor });
      return tensor;
    }
    const rows = hfShape[0]!;
    const tensor = param(name, transpose2d({ ...value, shape: [rows, numel(hfShape) / rows] }));
    this.entries.set(name, { tensor, hfShape });
    return tensor;
  }

  /**
   * Throws one error listing every problem: missing or misshapen tensors, and tensors the
   * checkpoint has but the model does not use (unless they match `ignore`).
   */
  check(ignore: readonly RegExp[] = []): void {
    const problems = [...this.problems];
    if (!('rng' in this.source)) {
      const extra = this.source.names().filter((n) => !this.entries.has(n) && !ignore.some((r) => r.test(n)));
      if (extra.length)
        problems.push(
          `unexpected tensor(s) not used by this architecture: ${extra.map((n) => `'${n}'`).join(', ')}`,
        );
    }
    if (problems.length)
      throw new InputError(
        'rng' in this.source ? '(random)' : this.source.file,
        problems,
        'the checkpoint does not fit the model',
      );
  }

  /** Every param tensor, in the order the model asked for them. */
  params(): Tensor[] {
    return [...this.entries.values()].map((e) => e.tensor);
  }

  /** Current values in HF names and layout (for saving a checkpoint). */
  toHf(): Record<string, HostArray> {
    const out: Record<string, HostArray> = {};
    for (const [name, e] of this.entries) {
      const v = (e.tensor.attrs as { value: HostArray }).value;
      out[name] = e.hfShape ? { ...transpose2d(v), shape: e.hfShape } : v;
    }
    return out;
  }
}

function initValues(n: number, init: Init, rng: Rng, std: number): Float32Array {
  const out = new Float32Array(n);
  if (init === 'ones') return out.fill(1);
  if (init === 'zeros' || std === 0) return out;
  return rng.fillNormal(out, 0, std);
}

/** [r, c] → [c, r]; O(parameters), done once at load. */
export function transpose2d(a: HostArray): HostArray {
  const [r, c] = a.shape as [number, number];
  const src = a.data as Float32Array;
  const out = new Float32Array(r * c);
  for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) out[j * r + i] = src[i * c + j]!;
  return hostArray('float32', [c, r], out);
}

/** Where a family's checkpoint keeps an encoder layer's tensors, relative to the layer's prefix. */
export type LayerTensorNames = Record<Exclude<keyof LayerWeights, 'transformation'>, string>;

/**
 * The weights of the encoder layer under prefix `p`, asked of the store only when the graph
 * uses them (a reuse encoder has no Q/K/V; only it has a transformation block).
 */
export function layerWeights(
  s: ParamStore,
  p: string,
  c: { hidden: number; ffn: number },
  names: LayerTensorNames,
  qkvBias = true,
): LayerWeights {
  const d = c.hidden;
  const dense = (name: string, out: number, inp: number, bias = true): Dense => ({
    weight: s.linear(`${p}.${name}.weight`, out, inp),
    ...(bias ? { bias: s.tensor(`${p}.${name}.bias`, [out], 'zeros') } : {}),
  });
  const norm = (name: string): Norm => ({
    weight: s.tensor(`${p}.${name}.weight`, [d], 'ones'),
    bias: s.tensor(`${p}.${name}.bias`, [d], 'zeros'),
  });
  return {
    get query() {
      return dense(names.query, d, d, qkvBias);
    },
    get key() {
      return dense(names.key, d, d, qkvBias);
    },
    get value() {
      return dense(names.value, d, d, qkvBias);
    },
    get output() {
      return dense(names.output, d, d);
    },
    get norm1() {
      return norm(names.norm1);
    },
    get ffnIn() {
      return dense(names.ffnIn, c.ffn, d);
    },
    get ffnOut() {
      return dense(names.ffnOut, d, c.ffn);
    },
    get norm2() {
      return norm(names.norm2);
    },
    get transformation() {
      return {
        norm: norm('attention.transformation.layernorm'),
        dense: dense('attention.transformation.dense', d, d),
      };
    },
  };
}
