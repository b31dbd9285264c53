/**
 * Noise-aware training (ClipFormer's VAT, docs/methods.md §1; the post-training paper's hardware-aware
 * training, §3): the training forward pass runs each mapped static layer through a crossbar tile
 * model with the hardware's noise drawn fresh at every step inside the graph, so the weights
 * (and, where the spec says 'learned', the ranges) learn to tolerate it while gradients reach them.
 *
 * A static layer, per row tile r (normalised units: a device at G_MAX driven at full scale adds 1):
 *   x̂ = DAC(x / range_r)                          range: max|x| per vector (dynamic, detached),
 *                                                   fixed, or learned (clipped, `rangeClip`)
 *   I = x̂ · (η ⊙ W/s ⊙ (1 + σ_rel ε) + σ_add ε) + σ_out ε′
 *   y = Σ_r ADC(I) / η · s · range_r
 * - s is the weight that maps to G_MAX, per tile (or column), fixed when training starts from the
 *   starting weights' max |W| (after the spec's `mapping.clip`); the weights are clipped to ±s
 *   after every step, so they stay the unit weights in [−1, 1] of the post-training paper's
 *   recipe and cannot grow outliers that squeeze every other weight of their tile.
 * - σ_rel² is the sum of the squares of relative programming and read noise (one draw per step
 *   stands for one programming read many times); σ_add is additive programming noise in units of
 *   G_MAX; σ_out the output noise. The DAC quantises to its levels (straight-through). The ADC
 *   (levels and saturation, straight-through inside the range) is modelled where inference
 *   converts one product per column, i.e. PWM inputs and analog cells; bit-serial or bit-sliced
 *   crossbars convert every input bit × weight slice, which one product cannot stand for, so
 *   their ADC is left out of training and their DAC runs as PWM with the same levels.
 * - Learned input ranges (`dac.range.kind: learned`): a param per row tile, whose gradient is
 *   aihwkit's rule (ops.ts `rangeClip`) plus the decay term decay·range while more than
 *   `minInside` of the inputs lie inside (`adjustGradients`). Learned conductance scales
 *   (`mapping.conductanceRange.kind: learned`): η per (row tile, column), a param kept in
 *   [min, 1]; shrinking η trades ADC saturation for noise relative to the signal.
 * - Drift and static-layer bit slicing are left out: the noise is what these recipes train against.
 * - Attention with K and V on crossbars: K and V are written per input with the spec's write
 *   noise through the same `dynamicProduct` as inference; the DAC runs as PWM and the cells as
 *   analog there too, because extracting bits with floor has a straight-through derivative of
 *   exactly zero (⌊v/2^i⌋ − 2⌊v/2^(i+1)⌋).
 */
import { adcStep } from '../analog/adc.js';
import { dynamicProduct } from '../analog/dynamic.js';
import {
  checkLearnedFit,
  hasLearnedRanges,
  readLearnedRanges,
  writeLearnedRanges,
} from '../analog/learned-ranges.js';
import { type Span, splitDim, weightScales } from '../analog/program.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import { type Crossbar, signedLevels } from '../analog/spec.js';
import { tileInputs, tileWeights } from '../analog/tiling.js';
import { recordLayerInputs } from '../eval/predict.js';
import { type HostArray, hostArray } from '../graph/ndarray.js';
import { constant, noise, param, randomNormal, scalar, type Tensor } from '../graph/tensor.js';
import { digital, type Matmuls } from '../models/encoder.js';
import type { ModelInputs } from '../models/family.js';
import type { Model } from '../models/index.js';
import { layerKind } from '../models/layer-names.js';
import { InputError } from '../util/errors.js';
import { seedFor } from '../util/math.js';

/** The weight noise of a static crossbar as (relative σ, additive σ in units of G_MAX). */
export function weightNoise(x: Crossbar, where: string): { relative: number; additive: number } {
  let rel2 = 0;
  let additive = 0;
  const p = x.program;
  if (p.kind === 'relative') rel2 += p.sigma ** 2;
  else if (p.kind === 'additive') additive = p.sigma;
  else if (p.kind !== 'none') {
    throw new InputError(where, [
      `program.kind: '${p.kind}' is not supported by noise-aware training; use 'relative', 'additive' or 'none' (e.g. --set program.kind=relative)`,
    ]);
  }
  const r = x.readNoise;
  if (r.kind === 'relative') rel2 += r.sigma ** 2;
  else if (r.kind !== 'none') {
    throw new InputError(where, [
      `readNoise.kind: '${(r as { kind: string }).kind}' is not supported by noise-aware training; use 'relative' or 'none'`,
    ]);
  }
  return { relative: Math.sqrt(rel2), additive };
}

/** W with fresh noise every run: w·(1 + σ_rel·ε) + σ_add·ε′ (W in units of G_MAX). */
export function noisyWeight(w: Tensor, noise: { relative: number; additive: number }, seed: number): Tensor {
  let y = w;
  if (noise.relative > 0) y = y.mul(randomNormal(w.shape, { seed }).mul(noise.relative).add(1));
  if (noise.additive > 0) y = y.add(randomNormal(w.shape, { seed: seed ^ 0x5bd1e995, std: noise.additive }));
  return y;
}

/** The K/V crossbar for training: PWM DAC and analog cells (see the module comment). */
function trainableAttention(x: Crossbar): Crossbar {
  return {
    ...x,
    cells: { kind: 'analog' },
    dac: x.dac.kind === 'uniform' ? { ...x.dac, mode: 'pwm' } : x.dac,
  };
}

/** Whether training models the static crossbar's ADC (one conversion per product: PWM, analog cells). */
const modelsAdc = (x: Crossbar): boolean =>
  x.adc.kind === 'uniform' &&
  x.cells.kind === 'analog' &&
  !(x.dac.kind === 'uniform' && x.dac.mode === 'bitSerial');

/** One mapped static layer in training: its tiling, weight bound and learned ranges. */
interface TrainedLayer {
  xbar: Crossbar;
  weight: Tensor;
  tiles: Span[];
  rows: number;
  inDim: number;
  outDim: number;
  /** |w| bound per (row tile, column), [R·C]: the weights are clipped to it after every step. */
  bound: Float32Array;
  /** Weight units per normalised unit s, [R, 1, C] (1 for `mapping.scale: none`). */
  norm: Tensor;
  /** Learned DAC range per row tile, [R, 1, 1]. */
  inputRange?: Tensor;
  /** Learned conductance scale η per (row tile, column), [R, 1, C]. */
  eta?: Tensor;
}

const paramData = (t: Tensor): Float32Array => (t.attrs as { value: HostArray }).value.data as Float32Array;

/**
 * Hardware-aware training from a spec: the crossbar products of the training graphs, the
 * ranges training learns beside the weights, and the constraints after each step. Call
 * `prepare` once before training collects its params.
 */
export class NoiseAwareTraining {
  private readonly layers = new Map<string, TrainedLayer>();
  private readonly attention: Crossbar | null;

  constructor(
    readonly hw: ResolvedSpec,
    readonly seed: number,
  ) {
    this.attention = hw.attention && trainableAttention(hw.attention);
  }

  private mapped(name: string): Crossbar | null {
    return this.hw.spec.mapped[layerKind(name)] ? this.hw.crossbar(name) : null;
  }

  /**
   * Finds the model's mapped layers, fixes their weight bounds from the current weights (and
   * clips the weights to them), and creates the learned ranges: from `resumeFrom`'s
   * analog_ranges file when it has one, else from `init` or from `firstBatch`'s inputs
   * (initSigmas × their std). Needed before training collects its params when ranges are
   * learned; without learned ranges, layers are also set up when a graph first meets them.
   */
  async prepare(model: Model, firstBatch: ModelInputs, resumeFrom?: string): Promise<void> {
    const found = model.linearLayers().flatMap(({ name, weight: w }) => {
      const xbar = this.mapped(name);
      return xbar ? [{ name, w, xbar }] : [];
    });
    const stored = resumeFrom && hasLearnedRanges(resumeFrom) ? readLearnedRanges(resumeFrom) : null;
    const fromData = found.filter(({ xbar }) => {
      const r = xbar.dac.kind === 'uniform' ? xbar.dac.range : null;
      return r?.kind === 'learned' && r.init === undefined;
    });
    const inputs =
      fromData.length > 0 && !stored
        ? await recordLayerInputs(
            model,
            firstBatch,
            fromData.map((l) => l.name),
          )
        : new Map<string, HostArray>();
    for (const { name, w, xbar } of found) {
      const [inDim, outDim] = w.shape as [number, number];
      if (stored) checkLearnedFit(resumeFrom!, stored, name, xbar, inDim, outDim);
      this.addLayer(name, w, xbar, {
        ...(stored?.inputRanges.get(name) ? { inputRange: stored.inputRanges.get(name)! } : {}),
        ...(stored?.columnScales.get(name) ? { eta: stored.columnScales.get(name)! } : {}),
        ...(inputs.get(name) ? { inputs: inputs.get(name)! } : {}),
      });
    }
    this.afterStep();
  }

  /** Sets up one mapped layer (see `prepare`); `from` holds stored ranges or the inputs to derive them from. */
  private addLayer(
    name: string,
    w: Tensor,
    xbar: Crossbar,
    from: { inputRange?: Float32Array; eta?: Float32Array; inputs?: HostArray },
  ): TrainedLayer {
    const where = `${this.hw.spec.name}: ${name}`;
    const [inDim, outDim] = w.shape as [number, number];
    const tiles = splitDim(inDim, xbar.tile.rows, xbar.tile.split);
    const rows = Math.max(...tiles.map((t) => t.size));
    const nR = tiles.length;
    weightNoise(xbar, where); // rejects kinds training cannot draw
    if (xbar.dac.kind === 'uniform' && xbar.dac.range.kind === 'calibrated') {
      throw new InputError(where, [
        "dac.range.kind: 'calibrated' ranges are set after training (post-training optimisation); train with 'learned', 'dynamic' or 'fixed'",
      ]);
    }
    if (xbar.mapping.conductanceRange.kind === 'calibrated') {
      throw new InputError(where, [
        "mapping.conductanceRange.kind: 'calibrated' is set after training; train with 'learned' or 'full'",
      ]);
    }
    if (xbar.adc.kind === 'uniform' && xbar.adc.range.kind === 'calibrated') {
      throw new InputError(where, [
        "adc.range.kind: 'calibrated' is set after training, from the trained weights; train with 'full' or 'fixed'",
      ]);
    }
    // an all-zero tile still needs a positive scale to divide by
    const bound = weightScales(paramData(w), outDim, xbar, tiles).map((v) => v || 1e-30);
    const s = xbar.mapping.scale === 'none' ? new Float32Array(bound.length).fill(1) : bound;
    const l: TrainedLayer = {
      xbar,
      weight: w,
      tiles,
      rows,
      inDim,
      outDim,
      bound,
      norm: constant(hostArray('float32', [nR, 1, outDim], s.slice())),
    };
    const range = xbar.dac.kind === 'uniform' && xbar.dac.range.kind === 'learned' ? xbar.dac.range : null;
    if (range) {
      const init =
        from.inputRange ??
        (range.init !== undefined
          ? new Float32Array(nR).fill(range.init)
          : from.inputs
            ? initialRanges(from.inputs, tiles, range.initSigmas)
            : null);
      if (!init) {
        throw new InputError(where, [
          "dac.range.kind: 'learned' without an init starts from the data: run NoiseAwareTraining.prepare (the training loop does), or give dac.range.init",
        ]);
      }
      l.inputRange = param(`hwa.${name}.input_range`, hostArray('float32', [nR, 1, 1], init.slice()));
    }
    if (xbar.mapping.conductanceRange.kind === 'learned') {
      const eta = from.eta ?? new Float32Array(nR * outDim).fill(1);
      l.eta = param(`hwa.${name}.conductance_scale`, hostArray('float32', [nR, 1, outDim], eta.slice()));
    }
    this.layers.set(name, l);
    return l;
  }

  /** The learned ranges: params the optimiser trains beside the model's. */
  params(): Tensor[] {
    return [...this.layers.values()].flatMap((l) => [
      ...(l.inputRange ? [l.inputRange] : []),
      ...(l.eta ? [l.eta] : []),
    ]);
  }

  /**
   * The crossbar products of one training graph, and the extra outputs it must compute (the
   * fraction of inputs inside each learned range, which `adjustGradients` reads).
   */
  graph(): { matmuls: Matmuls; outputs: Record<string, Tensor> } {
    const outputs: Record<string, Tensor> = {};
    const kv = this.attention;
    const matmuls: Matmuls = {
      linear: (name, x, w, b) => {
        const known = this.layers.get(name);
        const xbar = known ? known.xbar : this.mapped(name);
        if (!xbar) return digital.linear(name, x, w, b);
        const l = known?.weight === w ? known : this.addLayer(name, w, xbar, {});
        const y = this.trainedLinear(name, l, x, outputs);
        return b ? y.add(b) : y;
      },
      scores: (name, q, kT) =>
        kv ? dynamicProduct(q, kT, kv, seedFor(this.seed, `vat:${name}`)) : q.matmul(kT),
      mix: (name, s, v) => (kv ? dynamicProduct(s, v, kv, seedFor(this.seed, `vat:${name}`)) : s.matmul(v)),
    };
    return { matmuls, outputs };
  }

  /** The tile model of the module comment. x: (…, in) → (…, out) */
  private trainedLinear(name: string, l: TrainedLayer, x: Tensor, outputs: Record<string, Tensor>): Tensor {
    const { xbar } = l;
    const lead = x.shape.slice(0, -1);
    const n = lead.reduce((a, b) => a * b, 1);
    const xt = tileInputs(x.reshape([n, l.inDim]), l.tiles, l.rows); // [R, N, rows]
    const d = xbar.dac;
    let range: Tensor;
    let xc = xt;
    if (l.inputRange) {
      xc = xt.rangeClip(l.inputRange);
      range = l.inputRange;
      // fraction of the (unpadded) inputs inside the range, per tile: the decay's condition
      const inside = xt.abs().less(l.inputRange).cast('float32').sum([1, 2]);
      const pad = Float32Array.from(l.tiles, (t) => n * (l.rows - t.size));
      const count = Float32Array.from(l.tiles, (t) => n * t.size);
      outputs[`hwa.${name}.inside`] = inside
        .sub(constant(hostArray('float32', [l.tiles.length], pad)))
        .div(constant(hostArray('float32', [l.tiles.length], count)))
        .detach();
    } else if (d.kind === 'uniform' && d.range.kind === 'fixed') {
      range = scalar(d.range.max);
      xc = xt.clip(-d.range.max, d.range.max);
    } else {
      range = xt.abs().max(-1, true).maximum(1e-30).detach();
    }
    let xn = xc.div(range);
    if (d.kind === 'uniform') {
      const levels = signedLevels(d.bits);
      xn = xn.mul(levels).quantize(levels).div(levels);
    }
    let wt = tileWeights(l.weight, l.tiles, l.rows).div(l.norm); // [R, rows, C], |w| ≤ 1
    if (l.eta) wt = wt.mul(l.eta);
    wt = noisyWeight(
      wt,
      weightNoise(xbar, `${this.hw.spec.name}: ${name}`),
      seedFor(this.seed, `vat:${name}`),
    );
    let current = xn.matmul(wt); // [R, N, C]
    if (xbar.outputNoise.kind === 'gaussian' && xbar.outputNoise.sigma > 0) {
      current = current.add(
        noise(current.shape, {
          seed: seedFor(this.seed, `vat-out:${name}`),
          std: xbar.outputNoise.sigma,
          batchAxis: 1,
          batch: lead[0] ?? 1,
        }),
      );
    }
    if (modelsAdc(xbar) && xbar.adc.kind === 'uniform') {
      const step = adcStep(xbar, l.rows);
      current = current.div(step).quantize(signedLevels(xbar.adc.bits)).mul(step);
    }
    let y = l.eta ? current.div(l.eta) : current;
    y = y.mul(l.norm).mul(range);
    return (l.tiles.length === 1 ? y.reshape([n, l.outDim]) : y.sum(0)).reshape([...lead, l.outDim]);
  }

  /**
   * The decay term of the learned input ranges (the post-training paper's Eq. 2, η = decay):
   * + decay·range on each range's gradient while more than `minInside` of its inputs lie inside.
   * `grads` are those of `params()`, in order; `outputs` the graph's extra outputs.
   */
  adjustGradients(grads: readonly HostArray[], outputs: Record<string, HostArray>): void {
    let k = 0;
    for (const [name, l] of this.layers) {
      if (l.inputRange) {
        const r =
          l.xbar.dac.kind === 'uniform' && l.xbar.dac.range.kind === 'learned' ? l.xbar.dac.range : null;
        const g = grads[k++]!.data as Float32Array;
        const inside = outputs[`hwa.${name}.inside`]!.data as Float32Array;
        const range = paramData(l.inputRange);
        for (let t = 0; t < g.length; t++) if (inside[t]! > r!.minInside) g[t]! += r!.decay * range[t]!;
      }
      if (l.eta) k++;
    }
  }

  /** Constraints after every optimiser step: |w| ≤ bound, η ∈ [min, 1], ranges > 0. */
  afterStep(): void {
    for (const l of this.layers.values()) {
      const w = paramData(l.weight);
      l.tiles.forEach((t, r) => {
        for (let i = t.start; i < t.start + t.size; i++) {
          for (let c = 0; c < l.outDim; c++) {
            const b = l.bound[r * l.outDim + c]!;
            const at = i * l.outDim + c;
            w[at] = Math.min(Math.max(w[at]!, -b), b);
          }
        }
      });
      if (l.eta && l.xbar.mapping.conductanceRange.kind === 'learned') {
        const eta = paramData(l.eta);
        const min = l.xbar.mapping.conductanceRange.min;
        for (let i = 0; i < eta.length; i++) eta[i] = Math.min(Math.max(eta[i]!, min), 1);
      }
      if (l.inputRange) {
        const r = paramData(l.inputRange);
        for (let i = 0; i < r.length; i++) r[i] = Math.max(r[i]!, 1e-6);
      }
    }
  }

  /** Writes the learned ranges into a model folder (analog_ranges.safetensors); nothing when none are learned. */
  save(dir: string): void {
    const inputRanges = new Map<string, Float32Array>();
    const columnScales = new Map<string, Float32Array>();
    const outDims = new Map<string, number>();
    for (const [name, l] of this.layers) {
      if (l.inputRange) inputRanges.set(name, paramData(l.inputRange));
      if (l.eta) columnScales.set(name, paramData(l.eta));
      outDims.set(name, l.outDim);
    }
    if (inputRanges.size + columnScales.size === 0) return;
    writeLearnedRanges(dir, { inputRanges, columnScales, tile: this.hw.spec.tile }, outDims);
  }
}

/** Initial learned ranges: `sigmas` × the std of each tile's inputs over a batch x [M, in]. */
function initialRanges(x: HostArray, tiles: readonly Span[], sigmas: number): Float32Array {
  const [m, inDim] = x.shape as [number, number];
  const d = x.data as Float32Array;
  return Float32Array.from(tiles, (t) => {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < m; i++) {
      for (let j = t.start; j < t.start + t.size; j++) {
        const v = d[i * inDim + j]!;
        s += v;
        s2 += v * v;
      }
    }
    const count = m * t.size;
    return Math.max(sigmas * Math.sqrt(Math.max(s2 / count - (s / count) ** 2, 0)), 1e-6);
  });
}
