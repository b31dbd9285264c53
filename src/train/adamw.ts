/**
 * AdamW (decoupled weight decay) over param tensors, updating their values in place so a
 * compiled graph that feeds params sees the new weights without recompiling.
 * O(parameters) work, done in JavaScript. @see arXiv:1711.05101
 */
import type { HostArray } from '../graph/ndarray.js';
import { fmtShape, GraphError, sameShape } from '../graph/shape.js';
import type { Tensor } from '../graph/tensor.js';

export interface AdamWOptions {
  /** Learning rate (default 1e-3). */
  lr?: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  /** Decoupled weight decay coefficient (default 0.01). */
  weightDecay?: number;
  /** Params that get no weight decay (biases, LayerNorm). Default: rank < 2. */
  noDecay?: (p: Tensor) => boolean;
  /** A multiplier of the learning rate per param (default 1): e.g. learned ranges, which move in larger units. */
  lrScale?: (p: Tensor) => number;
}

interface Slot {
  value: Float32Array;
  m: Float32Array;
  v: Float32Array;
  decay: boolean;
  lrScale: number;
}

export class AdamW {
  readonly lr: number;
  private readonly b1: number;
  private readonly b2: number;
  private readonly eps: number;
  private readonly wd: number;
  private readonly slots: Slot[];
  /** Steps taken so far. */
  t = 0;

  constructor(
    readonly params: readonly Tensor[],
    opts: AdamWOptions = {},
  ) {
    this.lr = opts.lr ?? 1e-3;
    this.b1 = opts.beta1 ?? 0.9;
    this.b2 = opts.beta2 ?? 0.999;
    this.eps = opts.eps ?? 1e-8;
    this.wd = opts.weightDecay ?? 0.01;
    const noDecay = opts.noDecay ?? ((p: Tensor) => p.rank < 2);
    this.slots = params.map((p) => {
      if (p.op !== 'param' || p.dtype !== 'float32')
        throw new GraphError('AdamW', `${p} is not a float32 param`);
      const value = (p.attrs as { value: HostArray }).value.data as Float32Array;
      return {
        value,
        m: new Float32Array(value.length),
        v: new Float32Array(value.length),
        decay: !noDecay(p),
        lrScale: opts.lrScale?.(p) ?? 1,
      };
    });
  }

  /** One update from gradients aligned with `params`; `lr` overrides the base rate (schedules). */
  step(grads: readonly HostArray[], baseLr = this.lr): void {
    if (grads.length !== this.slots.length) {
      throw new GraphError('AdamW', `got ${grads.length} gradients for ${this.slots.length} params`);
    }
    this.t++;
    const c1 = 1 - this.b1 ** this.t;
    const c2 = 1 - this.b2 ** this.t;
    this.slots.forEach((s, k) => {
      const g = grads[k]!;
      const p = this.params[k]!;
      if (!sameShape(g.shape, p.shape)) {
        throw new GraphError('AdamW', `gradient ${fmtShape(g.shape)} does not match param ${p} `);
      }
      const gd = g.data as Float32Array;
      const { value, m, v } = s;
      const lr = baseLr * s.lrScale;
      const decay = s.decay ? 1 - lr * this.wd : 1;
      for (let i = 0; i < value.length; i++) {
        const gi = gd[i]!;
        const mi = this.b1 * m[i]! + (1 - this.b1) * gi;
        const vi = this.b2 * v[i]! + (1 - this.b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        value[i] = value[i]! * decay - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + this.eps);
      }
    });
  }

  /** Moments and step count, for checkpoints. */
  state(): { t: number; m: Float32Array[]; v: Float32Array[] } {
    return { t: this.t, m: this.slots.map((s) => s.m), v: this.slots.map((s) => s.v) };
  }

  loadState(st: { t: number; m: readonly Float32Array[]; v: readonly Float32Array[] }): void {
    if (st.m.length !== this.slots.length || st.v.length !== this.slots.length) {
      throw new GraphError('AdamW', `state has ${st.m.length} moments for ${this.slots.length} params`);
    }
    this.slots.forEach((s, k) => {
      if (st.m[k]!.length !== s.m.length)
        throw new GraphError(
          'AdamW',
          `state of param ${k} has ${st.m[k]!.length} values, needs ${s.m.length}`,
        );
      s.m.set(st.m[k]!);
      s.v.set(st.v[k]!);
    });
    this.t = st.t;
  }
}
