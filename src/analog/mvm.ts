/**
 * The analog MVM as graph ops: DAC → crossbar products per bit slice (and input bit) →
 * read and output noise → ADC → shift-add. Works in normalised units: inputs in [−1, 1] of the
 * DAC range, weights (G+ − G−)/ΔG, so a device at G_MAX driven by a full-scale input adds 1.
 * Shapes: `…` are batch dims shared by inputs and weights (none for static weights; B, H for
 * K/V written per input); R row tiles of `rows` rows, N input vectors, C outputs.
 */

import { hostArray } from '../graph/ndarray.js';
import { NOISE_TABLE_SAMPLES } from '../graph/noise-table.js';
import { broadcastShapes, numel, type Shape } from '../graph/shape.js';
import {
  concat,
  cond,
  constant,
  hostCall,
  noise,
  randomNormal,
  scalar,
  type Tensor,
  where,
} from '../graph/tensor.js';
import { nativeKernels, nativeThreads, type WrittenOperandArgs } from '../runtime/native.js';
import { InputError } from '../util/errors.js';
import { seedFor } from '../util/math.js';
import type { Crossbar } from './spec.js';

/** Fresh N(0, std²) noise of `shape` at every run, drawn as the crossbar's `noiseSampler` says. */
export function gaussianNoise(shape: Shape, std: number, seed: number, xbar: Crossbar): Tensor {
  return xbar.noiseSampler === 'table' && numel(shape) <= NOISE_TABLE_SAMPLES
    ? noise(shape, { seed, std })
    : randomNormal(shape, { seed, std });
}

/** Quantisation levels each side of zero of a signed `bits`-bit converter. */
export const signedLevels = (bits: number): number => 2 ** (bits - 1) - 1;

export interface DacOut {
  /**
   * The DAC's planes, [K, …, R, N, rows]: K = 1 (PWM; integer codes) or one signed bit plane per
   * magnitude bit. `planeScale` × planes are the normalised inputs in [−1, 1].
   */
  planes: Tensor;
  /**
   * The signed codes the planes come from, [(…), R, N, rows]: integers for a quantising DAC
   * (bit-serial planes are the bits of their magnitudes), the normalised inputs for an ideal one.
   */
  codes: Tensor;
  /** Normalised units per plane unit: 1/levels for PWM codes (folded into the weights), else 1. */
  planeScale: number;
  /** Weight of each plane in the recombination, length K. */
  planeWeights: number[];
  /** The DAC range per tile and vector, [(…), R, N, 1], in input units. */
  range: Tensor;
}

/** The error for range kinds that need calibration data, which plain evaluation does not have. */
export const calibrationError = (field: string, kind: string) =>
  new InputError(
    field,
    `range kind '${kind}' needs calibration (post-training range optimisation) or training; ` +
      "plain evaluation supports 'dynamic' and 'fixed' input ranges and the 'full' conductance range",
  );

/** max|x| along the last axis, kept: the larger of max x and −min x, two reductions that only read x (|x| would be written first). */
function peakMagnitude(x: Tensor): Tensor {
  return x.max(-1, true).maximum(x.min(-1, true).neg());
}

/**
 * DAC of tiled inputs x: [(…), R, N, rows]. The range is max|x| per tile and vector (dynamic;
 * also what an ideal DAC normalises by, so ADC ranges keep their meaning), a fixed value, or
 * one value per tile from calibration or training (`tileRanges`, [R, 1, 1]); inputs beyond a
 * fixed, calibrated or learned range clip. Quantised inputs are integer codes: levels/range is
 * one small tensor, so quantising costs one multiply and one round over the inputs.
 * `divisor`: bound management's reduced rounds see x/divisor (`known`: the range of x, already
 * computed for the first round).
 */
export function dac(x: Tensor, xbar: Crossbar, tileRanges?: Tensor, divisor = 1, known?: Tensor): DacOut {
  const d = xbar.dac;
  const kind = d.kind === 'uniform' ? d.range.kind : 'dynamic';
  const perTile = kind === 'calibrated' || kind === 'learned';
  if (perTile && !tileRanges) throw calibrationError('dac.range', kind);
  const fixed = d.kind === 'uniform' && d.range.kind === 'fixed' ? d.range.max : undefined;
  const clips = fixed !== undefined || perTile;
  const range =
    known ??
    (perTile
      ? tileRanges!.expand([...x.shape.slice(0, -1), 1])
      : fixed === undefined
        ? peakMagnitude(x).maximum(1e-30)
        : scalar(fixed).expand([...x.shape.slice(0, -1), 1]));
  const plane = (t: Tensor) => t.reshape([1, ...t.shape]);
  if (d.kind === 'ideal') {
    const xn = x.div(divisor === 1 ? range : range.mul(divisor));
    const codes = clips ? xn.clip(-1, 1) : xn;
    return { planes: plane(codes), codes, planeScale: 1, planeWeights: [1], range };
  }
  const levels = signedLevels(d.bits);
  // In reduced rounds the largest input lands on a half level (levels/2 at divisor 2), where the
  // arithmetic decides the code: these rounds quantise as aihwkit's C++ does, x·(1/(range·r))
  // divided by its float32 step 2·fl(1/(2·levels)), a hair above 1/levels, so it rounds down.
  const scaled =
    divisor === 1
      ? x.mul(scalar(levels).div(range))
      : x.mul(scalar(1).div(range.mul(divisor))).div(2 * Math.fround(1 / (2 * levels)));
  // a dynamic range holds every input: its codes lie within ±levels, so no clip is needed
  if (d.mode === 'pwm') {
    const codes = scaled.quantize(levels, !clips);
    return { planes: plane(codes), codes, planeScale: planeScaleOf(xbar), planeWeights: [1], range };
  }
  // bit-serial: signed planes sign(x)·bit_k(|x|·L), bit_k = ⌊v/2^k⌋ − 2⌊v/2^(k+1)⌋
  const k = d.bits - 1;
  const mag = scaled.abs().quantize(levels, !clips);
  const pow = constant(
    hostArray(
      'float32',
      [k + 1, ...x.shape.map(() => 1)],
      Float32Array.from({ length: k + 1 }, (_, i) => 2 ** -i),
    ),
  );
  const floors = mag
    .reshape([1, ...mag.shape])
    .mul(pow)
    .floor();
  const bits = floors.slice(0, 0, k).sub(floors.slice(0, 1, k + 1).mul(2));
  const planes = bits.mul(x.sign());
  return {
    planes,
    codes: mag.mul(x.sign()),
    planeScale: 1,
    planeWeights: Array.from({ length: k }, (_, i) => 2 ** i / levels),
    range,
  };
}

/**
 * What a crossbar product multiplies by: per slice, weights (G+ − G−)/ΔG [J, …, R, rows, C] and
 * their squares G+² + G−² over ΔG² (for read noise), or null.
 */
export interface Operand {
  weights: Tensor;
  squares: Tensor | null;
  /**
   * Whether weights and squares are already × `operandScales` (static layers store them so, once
   * per programming: a scale applied in the graph is a pass over the weights at every run).
   */
  inSteps?: boolean;
  /** For weights written per input: what the native kernel writes them from, where it applies. */
  written?: WrittenOperand;
}

/** Normalised input units per DAC plane unit: 1/levels for PWM codes, else 1. */
function planeScaleOf(xbar: Crossbar): number {
  const d = xbar.dac;
  return d.kind === 'uniform' && d.mode === 'pwm' ? 1 / signedLevels(d.bits) : 1;
}

/**
 * Outputs are computed in ADC steps: 1/step, the plane scale and the read noise's σ are folded
 * into the (small) weight tensors, saving passes over the outputs. Weights × `weightScale` are
 * ADC steps per plane unit; squares × `squareScale` are their (σ_R·…)² (0: no read noise).
 */
export function operandScales(xbar: Crossbar, rows: number): { weightScale: number; squareScale: number } {
  const weightScale = planeScaleOf(xbar) / adcStep(xbar, rows);
  const sigma = xbar.readNoise.kind === 'relative' ? xbar.readNoise.sigma : 0;
  return { weightScale, squareScale: (sigma * weightScale) ** 2 };
}

/** The scales still to apply to an operand: none when it is stored in ADC steps. */
const scalesLeft = (op: Operand, scales: ReturnType<typeof operandScales>) =>
  op.inSteps ? { weightScale: 1, squareScale: 1 } : scales;

/**
 * Crossbar products of DAC planes [K, …, R, N, rows] with weights [J, …, R, rows, C] (and their
 * squares, for read noise), through noise and ADC, recombined: → [(…), R, N, C] in ADC steps
 * (× `adcStep` for normalised units; callers fold it into their digital gain, one pass).
 */
export function crossbarProducts(
  d: DacOut,
  weights: Tensor,
  squares: Tensor | null,
  sliceWeights: readonly number[],
  xbar: Crossbar,
  rows: number,
  seed: number,
): Tensor {
  return products(d, { weights, squares }, sliceWeights, xbar, rows, seed).codes(false);
}

interface Products {
  /** The values each product sees before its ADC, one [J, …, R, N, C] tensor per input plane. */
  pre: Tensor[];
  /**
   * Their ADC codes recombined over planes and slices, [(…), R, N, C] in ADC steps. `inRange`:
   * no conversion saturated (bound management tested it), so the ADC's clip is left out.
   */
  codes(inRange: boolean): Tensor;
}

/** `crossbarProducts` before the ADC: what bound management's saturation test reads. */
function products(
  d: DacOut,
  op: Operand,
  sliceWeights: readonly number[],
  xbar: Crossbar,
  rows: number,
  seed: number,
  needPre = true,
): Products {
  // one input plane at a time: the [J, …, R, N, C] products of a plane are the largest tensor,
  // not [K, J, …] (7× smaller for 8-bit bit-serial inputs)
  const scales = operandScales(xbar, rows);
  const { weightScale, squareScale } = scalesLeft(op, scales);
  const noisy = scales.squareScale > 0;
  const w = weightScale === 1 ? op.weights : op.weights.mul(weightScale);
  const sq = op.squares && noisy ? (squareScale === 1 ? op.squares : op.squares.mul(squareScale)) : null;
  // the kernel scales the weights as it reads them: scaled copies made in a graph would cross
  // to it as (large) values at every run
  const fused = needPre
    ? null
    : fusedProducts(
        d,
        op.weights,
        weightScale,
        noisy ? op.squares : null,
        squareScale,
        outputSigma(xbar, rows),
        sliceWeights,
        xbar,
        seed,
        undefined,
        op.written,
      );
  if (fused) return { codes: () => fused, pre: [] };
  const k = d.planeWeights.length;
  const pre = Array.from({ length: k }, (_, p) => {
    const plane =
      k === 1
        ? d.planes.reshape(d.planes.shape.slice(1))
        : d.planes.slice(0, p, p + 1).reshape(d.planes.shape.slice(1));
    return sliceProducts(plane, w, sq, outputSigma(xbar, rows), xbar, seedFor(seed, `plane${p}`)); // [J, …]
  });
  const shape = pre[0]!.shape.slice(1);
  const codes = (inRange: boolean) => {
    // plane outputs recombine as [1, J] × [J, M] products accumulated in 2-D (M = all output
    // elements): ONNX Runtime fuses each addition into the Gemm
    let acc: Tensor | null = null;
    pre.forEach((y, p) => {
      const term = weightedSum(
        adc(y, xbar, inRange),
        sliceWeights.map((sw) => sw * d.planeWeights[p]!),
      );
      acc = acc ? term.add(acc) : term;
    });
    return acc!.reshape(shape);
  };
  return { pre, codes };
}

/** The output noise's σ in ADC steps (0: none). */
function outputSigma(xbar: Crossbar, rows: number): number {
  return xbar.outputNoise.kind === 'gaussian' ? xbar.outputNoise.sigma / adcStep(xbar, rows) : 0;
}

/**
 * DAC → products → ADC → digital gain → sum over row tiles, all in the native kernel, for
 * tiled inputs x [(…), R, N, rows] (a static layer's, or K/V products' with weights per batch):
 * → [(…), N, C], or null where the kernel does not apply (then `analogMvm` and the caller's gain
 * and sum compute the same). `gainScale`: the gain's per-column part (tile scale × ADC step) per
 * (batch, row tile, block of `block` columns), [1 or B, R, C/block]; the gain is that × each
 * vector's DAC range. ONNX Runtime's broadcast multiply by a gain per 64 columns and its ReduceSum
 * over a leading axis take ~15 % of a bit-serial model's time; in the kernel they are a
 * multiply-add per output.
 */
export function fusedMvm(
  x: Tensor,
  xbar: Crossbar,
  tileRanges: Tensor | undefined,
  op: Operand,
  sliceWeights: readonly number[],
  rows: number,
  seed: number,
  gainScale: Tensor,
  block: number,
): Tensor | null {
  // (fusedProducts checks whether the kernel is built and applies; DAC nodes nothing reads are never emitted)
  const d = dac(x, xbar, tileRanges);
  const scales = operandScales(xbar, rows);
  const { weightScale, squareScale } = scalesLeft(op, scales);
  // a dynamic DAC range is computed in the kernel, with the codes and the gain from it (one pass
  // over the inputs instead of ~12 ONNX ops); a given range (fixed, calibrated, learned) in the graph
  const dynamic = xbar.dac.kind === 'uniform' && xbar.dac.range.kind === 'dynamic' && !tileRanges;
  const [gainBatches, nR, blocks] = gainScale.shape as [number, number, number];
  const [B, N] = [numel(x.shape.slice(0, -3)), x.shape.at(-2)!];
  const gain = {
    values: dynamic
      ? gainScale
      : gainScale.reshape([gainBatches, nR, 1, blocks]).mul(d.range.reshape([B, nR, N, 1])),
    block,
    batches: gainBatches,
  };
  return fusedProducts(
    d,
    op.weights,
    weightScale,
    scales.squareScale > 0 ? op.squares : null,
    squareScale,
    outputSigma(xbar, rows),
    sliceWeights,
    xbar,
    seed,
    gain,
    op.written,
    dynamic ? x : undefined,
  );
}

/**
 * Σ_j coef[j]·y[j] over the leading axis of y [J, …], flat: [1, M] (M = the other elements).
 * A [1, J] × [J, M] product reads each y[j] once, where a broadcast multiply and ONNX Runtime's
 * ReduceSum over a leading axis take several passes.
 */
export function weightedSum(y: Tensor, coef: readonly number[]): Tensor {
  const flat = y.reshape([coef.length, y.size / coef.length]);
  return coef.length === 1 && coef[0] === 1
    ? flat
    : constant(hostArray('float32', [1, coef.length], Float32Array.from(coef))).matmul(flat);
}

/** The ADC's integer codes of values in ADC steps (identity for an ideal ADC). */
function adc(y: Tensor, xbar: Crossbar, inRange: boolean): Tensor {
  return xbar.adc.kind === 'uniform' ? y.quantize(signedLevels(xbar.adc.bits), inRange) : y;
}

/** The largest |value| before the ADC per column tile, over planes and slices: [(…), R, N, T, 1]. */
function tilePeaks(pre: readonly Tensor[], widths: readonly number[]): Tensor {
  let peak: Tensor | undefined;
  for (const p of pre) {
    const m = tilePeak(p.abs(), widths); // [J, …, R, N, T, 1]
    const planePeak = m.shape[0] === 1 ? m.reshape(m.shape.slice(1)) : m.max(0);
    peak = peak ? peak.maximum(planePeak) : planePeak;
  }
  return peak!;
}

/**
 * Whether any value before the ADC exceeds `threshold` in magnitude: two reductions that only
 * read, per row first (ONNX Runtime reduces a whole tensor to one value on one thread, rows on
 * all of them), then over the small result.
 */
function anyAbove(pre: readonly Tensor[], threshold: number): Tensor {
  let top: Tensor | undefined;
  for (const p of pre) {
    const m = peakMagnitude(p).max();
    top = top ? top.maximum(m) : m;
  }
  return top!.greater(threshold);
}

/**
 * DAC → crossbar products → ADC of tiled inputs x [(…), R, N, rows], with the ADC's bound
 * management, then `finish`: the digital gain of codes [(…), R, N, C] in ADC steps (as
 * `crossbarProducts`) with the DAC range [(…), R, N, 1]. `columnTiles`: widths of the column
 * tiles along C (a vector is re-run per row tile and column tile, as each is its own crossbar
 * and periphery).
 *
 * Iterative bound management unrolls its rounds with divisors r = 2, 4, … (input divided by r,
 * fresh DAC quantisation and noise, result × r; `boundManagementRounds`) behind two `cond`s:
 * round 2 runs only when some vector saturated in round 1, the rest only when some vector still
 * saturated in round 2; each vector takes the first round in which its column tile did not
 * saturate, or the last. With no saturation the cost is two reductions (max and min) that read
 * the outputs once each.
 */
export function analogMvm(
  x: Tensor,
  xbar: Crossbar,
  tileRanges: Tensor | undefined,
  op: Operand,
  sliceWeights: readonly number[],
  rows: number,
  seed: number,
  columnTiles: readonly number[],
  finish: (codes: Tensor, range: Tensor) => Tensor,
): Tensor {
  const d = dac(x, xbar, tileRanges);
  const n = boundManagementRounds(xbar);
  const run = (dr: DacOut, s: number) => products(dr, op, sliceWeights, xbar, rows, s, n > 1);
  const first = run(d, seed);
  if (n === 1 || xbar.adc.kind !== 'uniform') return finish(first.codes(false), d.range);
  const levels = signedLevels(xbar.adc.bits);
  const bound = xbar.adc.range.kind === 'fixed' ? xbar.adc.range.max : rows;
  const threshold = saturationThreshold(levels, topCodeSaturates(levels, bound));
  /** Round k (divisor 2^(k−1)) for the vectors whose `peak` in round k − 1 saturated. */
  const refine = (k: number, prev: Tensor, peak: Tensor): Tensor => {
    const divisor = 2 ** (k - 1);
    const saturated = peak.greater(threshold);
    const r = run(dac(x, xbar, tileRanges, divisor, d.range), seedFor(seed, `bm${divisor}`));
    const merged = tileSelect(saturated, r.codes(false).mul(divisor), prev, columnTiles);
    if (k === n) return merged;
    const still = where(saturated, tilePeaks(r.pre, columnTiles), 0);
    // round 2 settles most vectors: rounds 3… run together, behind one more test, since every
    // cond costs ONNX Runtime two subgraphs to create (~5 ms each)
    const next = refine(k + 1, merged, still);
    return k === 2 ? cond(still.max().greater(threshold), next, merged) : next;
  };
  // `finish` (the digital gain) runs inside both branches: the else branch then writes the
  // result directly instead of copying the codes out of the If. There nothing saturated, so
  // its ADC rounds without clipping
  return cond(
    anyAbove(first.pre, threshold),
    finish(refine(2, first.codes(false), tilePeaks(first.pre, columnTiles)), d.range),
    finish(first.codes(true), d.range),
  );
}

/**
 * Rounds of bound management (1: none): divisors 1, 2, 4, … up to the first that exceeds
 * maxFactor or levels/minInputLevels of a quantised DAC (aihwkit's stopping rule).
 */
export function boundManagementRounds(xbar: Crossbar): number {
  if (xbar.adc.kind !== 'uniform' || xbar.adc.boundManagement.kind === 'none') return 1;
  const bm = xbar.adc.boundManagement;
  const dacLevels = xbar.dac.kind === 'uniform' ? signedLevels(xbar.dac.bits) : Infinity;
  const limit = Math.min(bm.maxFactor, dacLevels / bm.minInputLevels);
  let rounds = 1;
  for (let divisor = 1; !(divisor > limit); divisor *= 2) rounds++;
  return rounds;
}

/**
 * |y| (in ADC steps) above which a conversion saturates: its code, rounded half to even, lies
 * beyond ±levels, or reaches ±levels when `top` (see `topCodeSaturates`). The half-way value
 * itself saturates when it rounds up (to an even code): the threshold is then the float32 below.
 */
export function saturationThreshold(levels: number, top = false): number {
  const first = top ? levels : levels + 1; // the first saturated code
  const edge = first - 0.5;
  if (first % 2 !== 0) return edge;
  const f = new Float32Array([edge]);
  new Uint32Array(f.buffer)[0]! -= 1;
  return f[0]!;
}

/**
 * Whether aihwkit's C++ periphery sees its top ADC code as beyond its bound: it tests the
 * float32 value code·step > bound, with its step 2·bound·fl(1/(2·levels)) in float32. For 9 bits
 * over ±12 (its default) the top code reads 12.000001, so reaching it counts as saturating.
 */
export function topCodeSaturates(levels: number, bound: number): boolean {
  const f = Math.fround;
  return f(levels * f(f(1 / (2 * levels)) * f(2 * bound))) > f(bound);
}

/** max over each column tile of a [..., C]: → [..., T, 1]. */
function tilePeak(a: Tensor, widths: readonly number[]): Tensor {
  const lead = a.shape.slice(0, -1);
  const w = widths[0]!;
  if (widths.every((v) => v === w)) return a.reshape([...lead, widths.length, w]).max(-1, true);
  let at = 0;
  const parts = widths.map((v) => {
    const m = a.slice(-1, at, at + v).max(-1, true);
    at += v;
    return m;
  });
  return concat(parts, -1).reshape([...lead, widths.length, 1]);
}

/** Per column tile, a where `mask` [..., T, 1] holds, else b (both [..., C]). */
function tileSelect(mask: Tensor, a: Tensor, b: Tensor, widths: readonly number[]): Tensor {
  const lead = a.shape.slice(0, -1);
  const w = widths[0]!;
  if (widths.every((v) => v === w)) {
    const split = [...lead, widths.length, w];
    return where(mask, a.reshape(split), b.reshape(split)).reshape(a.shape);
  }
  let at = 0;
  const parts = widths.map((v, t) => {
    const m = mask.slice(-2, t, t + 1).reshape([...mask.shape.slice(0, -2), 1]);
    const part = where(m, a.slice(-1, at, at + v), b.slice(-1, at, at + v));
    at += v;
    return part;
  });
  return concat(parts, -1);
}

/**
 * The digital gain of crossbar outputs in one pass: codes [(…), R, N, C] × gain, where gain is
 * [(…), R, N|1, C] (per column) or, when `block` > 1, one value per block of `block` columns,
 * [(…), R, N|1, C/block, 1] (per column tile: a small tensor, so the range of each input vector
 * and the tile scale multiply into it before they touch the outputs).
 */
export function applyGain(codes: Tensor, gain: Tensor, block: number): Tensor {
  if (block === 1) return codes.mul(gain);
  const shape = codes.shape;
  const c = shape.at(-1)!;
  return codes
    .reshape([...shape.slice(0, -1), c / block, block])
    .mul(gain)
    .reshape(shape);
}

/** The ADC's step in normalised units (1 for an ideal ADC). */
export function adcStep(xbar: Crossbar, rows: number): number {
  if (xbar.adc.kind !== 'uniform') return 1;
  const r = xbar.adc.range;
  return (r.kind === 'fixed' ? r.max : rows) / signedLevels(xbar.adc.bits);
}

/**
 * Whether the native kernel computes this crossbar's products (when built): bit-serial inputs,
 * table noise, no bound management (which needs the values before the ADC).
 */
export function fusedFor(xbar: Crossbar): boolean {
  return (
    xbar.dac.kind === 'uniform' &&
    xbar.dac.mode === 'bitSerial' &&
    xbar.noiseSampler === 'table' &&
    boundManagementRounds(xbar) === 1
  );
}

/**
 * An operand written into crossbars per input (K, V; dynamic.ts), for the native kernel, which
 * writes each tile's cells as it copies it: the same cells the graph's weights and squares
 * describe, from the same noise.
 */
export interface WrittenOperand {
  /** Signed unit values [(…), R, rows, C] (mapped, and through any conductance transform). */
  unit: Tensor;
  /** N(0, 1) write noise of the G+ and G− devices, [J, (…), R, rows, C]; null without programming noise. */
  noise: [Tensor, Tensor] | null;
  params: Omit<WrittenOperandArgs, 'unit' | 'writeNoise' | 'writeSquares'>;
}

/**
 * The kernel's levelled form of static cells, per cell array (the `weights` it was found in):
 * kept between runs, so that a tile is classified once per programming instead of at every run.
 * Reprogramming gives a layer new arrays (AnalogModel), so an entry never outlives its cells.
 */
const levelledCaches = new WeakMap<Float32Array, { handle?: unknown }>();

/** Slice counts the native kernel is compiled for. */
const NATIVE_SLICES = new Set([1, 2, 3, 4, 8]);

/**
 * The products, noise, ADC and shift-add of `products` in one native kernel
 * (native/crossbar_products.cc), when it is built and applies: bit-serial inputs (the case
 * where the graph spends ~8 passes over K× expanded values; a PWM product is one plain Gemm
 * there, which ONNX Runtime does best), table noise (the kernel reads
 * the same windows, assigning their samples to outputs in its own order, so a seed gives other
 * numbers than the ONNX graph, from the same distribution) and weights shared by every input
 * batch or one per batch. Null otherwise; the ONNX graph then computes the same thing.
 * w: weights [J, (…), R, rows, C], × `weightScale` in ADC steps per plane unit; sq: their
 * squares (× `squareScale`: (σ_R/step)² per plane unit²), or null.
 */
function fusedProducts(
  d: DacOut,
  w: Tensor,
  weightScale: number,
  sq: Tensor | null,
  squareScale: number,
  outSigma: number,
  sliceWeights: readonly number[],
  xbar: Crossbar,
  seed: number,
  /**
   * The digital gain per block of `block` columns, summed over row tiles after: [(…), R, N, G],
   * or with `dacInputs` its column part [`batches` (1 or B), R, G], which the kernel multiplies
   * by each vector's DAC range.
   */
  gain?: { values: Tensor; block: number; batches?: number },
  /** Set when w and sq are written per input: the kernel then writes them itself, from these. */
  written?: WrittenOperand,
  /** The DAC's inputs [(…), R, N, rows], for a dynamic range: the kernel quantises them itself. */
  dacInputs?: Tensor,
): Tensor | null {
  const kernels = nativeKernels();
  if (!kernels || !fusedFor(xbar)) return null;
  const J = w.shape[0]!;
  const lead = d.codes.shape.slice(0, -3);
  const wLead = w.shape.slice(1, -3);
  const [R, N, rows] = d.codes.shape.slice(-3) as [number, number, number];
  const C = w.shape.at(-1)!;
  const B = numel(lead);
  const sameLead = wLead.length === lead.length && wLead.every((v, i) => v === lead[i]);
  const k = d.planeWeights.length;
  const noiseSize = J * B * R * N * C;
  if (!NATIVE_SLICES.has(J) || (numel(wLead) !== 1 && !sameLead) || noiseSize > NOISE_TABLE_SAMPLES || k > 31)
    return null;
  const planeSeeds = d.planeWeights.map((_, p) => seedFor(seed, `plane${p}`));
  const read = sq ? planeSeeds.map((s) => gaussianNoise([noiseSize], 1, seedFor(s, 'read'), xbar)) : [];
  const out =
    outSigma > 0 ? planeSeeds.map((s) => gaussianNoise([noiseSize], outSigma, seedFor(s, 'out'), xbar)) : [];
  const coef = Float32Array.from(
    { length: k * J },
    (_, i) => sliceWeights[i % J]! * d.planeWeights[Math.floor(i / J)]!,
  );
  const levels = xbar.adc.kind === 'uniform' ? signedLevels(xbar.adc.bits) : 0;
  const shape = gain ? [...lead, N, C] : [...lead, R, N, C];
  const dims = {
    B,
    Bw: numel(wLead),
    R,
    N,
    rows,
    C,
    J,
    planes: k,
    levels,
    weightScale: Math.fround(weightScale),
    squareScale: Math.fround(squareScale),
    gainBlock: gain?.block ?? 1,
    gainBatches: gain?.batches ?? 1,
    sumTiles: gain !== undefined,
  };
  const writes = written ? { ...written.params, writeSquares: sq !== null } : null;
  const dacLevels = dacInputs && xbar.dac.kind === 'uniform' ? signedLevels(xbar.dac.bits) : 0;
  const key = `crossbarProducts ${JSON.stringify(dims)} ${sq ? 'squares' : ''} ${out.length} [${coef.join(',')}] ${JSON.stringify(writes)} dac ${dacLevels}`;
  // the operand: programmed cells (weights, and squares for read noise), or what the kernel writes them from
  const operand = written ? [written.unit, ...(written.noise ?? [])] : [w, ...(sq ? [sq] : [])];
  const inputs = [dacInputs ?? d.codes, ...operand, ...read, ...out, ...(gain ? [gain.values] : [])];
  return hostCall(key, inputs, shape, (ins, reuse) => {
    const data = (i: number) => ins[i]!.data as Float32Array;
    const first = 1 + operand.length;
    const cells = writes
      ? {
          ...writes,
          unit: data(1),
          writeNoise: written!.noise ? ([data(2), data(3)] as [Float32Array, Float32Array]) : null,
        }
      : { weights: data(1), squares: sq ? data(2) : null, levelledCache: levelledCacheOf(data(1)) };
    return {
      dtype: 'float32',
      shape,
      data: kernels.crossbarProducts({
        ...dims,
        ...(dacInputs ? { inputs: data(0), dacLevels, codes: null } : { codes: data(0) }),
        ...cells,
        readNoise: sq ? read.map((_, p) => data(first + p)) : null,
        outNoise: out.length ? out.map((_, p) => data(first + read.length + p)) : null,
        coef,
        ...(gain ? { [dacInputs ? 'gainScale' : 'gain']: data(ins.length - 1) } : {}),
        threads: nativeThreads(),
        ...(reuse instanceof Float32Array ? { out: reuse } : {}),
      }),
    };
  });
}

/** The entry of `levelledCaches` for a cell array (made empty: the kernel fills it). */
function levelledCacheOf(weights: Float32Array): { handle?: unknown } {
  let c = levelledCaches.get(weights);
  if (!c) {
    c = {};
    levelledCaches.set(weights, c);
  }
  return c;
}

/**
 * One input plane [(…), R, N, rows] times every weight slice [J, …, R, rows, C] (weights in ADC
 * steps, squares pre-multiplied by (σ_R/step)²), with read and output noise: the values the
 * ADC converts, [J, …, R, N, C] in ADC steps.
 */
function sliceProducts(
  x: Tensor,
  weights: Tensor,
  squares: Tensor | null,
  outSigma: number,
  xbar: Crossbar,
  seed: number,
): Tensor {
  // a single tile and slice runs as 2-D products: ONNX Runtime then fuses the output noise into
  // its Gemm (C input), which costs nothing next to a separate pass over the outputs
  const batch = [...x.shape.slice(0, -2), ...weights.shape.slice(0, -2)];
  const flat = batch.every((d) => d === 1);
  const outShape = [
    ...(x.rank > weights.rank ? x.shape : weights.shape).slice(0, -2),
    x.shape.at(-2)!,
    weights.shape.at(-1)!,
  ];
  const as2d = (t: Tensor) => (flat ? t.reshape(t.shape.slice(-2)) : t);
  const xs = as2d(x);
  let y = tiledMatmul(xs, as2d(weights));
  if (squares) {
    // G(1 + σξ) per device, exactly in distribution: σ·sqrt(Σ x²·G²)·ξ per output
    y = y.add(
      tiledMatmul(xs.mul(xs), as2d(squares))
        .sqrt()
        .mul(gaussianNoise(y.shape, 1, seedFor(seed, 'read'), xbar)),
    );
  }
  if (outSigma > 0) y = y.add(gaussianNoise(y.shape, outSigma, seedFor(seed, 'out'), xbar));
  return flat ? y.reshape(outShape) : y;
}

/** Fewest rows each product of a split keeps (a GEMM of fewer rows loses more than balance gains). */
const MIN_SPLIT_ROWS = 64;

/**
 * The share of `threads` kept busy when ONNX Runtime runs `products` equal GEMMs: its batched
 * MatMul gives each GEMM ⌈threads/products⌉ parts (1 when there are at least as many GEMMs as
 * threads) and runs the parts in rounds of `threads`, so 3 GEMMs on 2 threads take 2 rounds.
 */
export function batchBalance(products: number, threads: number): number {
  const parts = products * Math.max(1, Math.ceil(threads / products));
  return parts / (threads * Math.ceil(parts / threads));
}

/**
 * a [(…), N, K] · b [(…), K, C] for tiles, as a batched matmul whose GEMMs share out evenly: ONNX
 * Runtime gives each GEMM of a batch its own threads, so the 3 row tiles of a 1536-input layer
 * ran on 2 threads in 2 rounds, the second half idle (a one-image ffnOut product 1.55× slower
 * than split in two). The N rows are split into s blocks, [(…), s, N/s, K]·[(…), 1, K, C]: s is
 * the divisor of N (blocks of at least MIN_SPLIT_ROWS rows) that keeps most threads busy
 * (`batchBalance`), the smallest such. Each output is computed as before (the same K-long sum),
 * so the numbers are the same whatever s is.
 */
export function tiledMatmul(a: Tensor, b: Tensor, threads = nativeThreads()): Tensor {
  if (a.rank < 3 || b.rank < 3) return a.matmul(b);
  const n = a.shape.at(-2)!;
  const k = a.shape.at(-1)!;
  const products = numel(broadcastShapes('matmul', a.shape.slice(0, -2), b.shape.slice(0, -2)));
  let s = 1;
  for (let d = 2; d <= n / MIN_SPLIT_ROWS; d++)
    if (n % d === 0 && batchBalance(products * d, threads) > batchBalance(products * s, threads)) s = d;
  if (s === 1) return a.matmul(b);
  const y = a
    .reshape([...a.shape.slice(0, -2), s, n / s, k])
    .matmul(b.reshape([...b.shape.slice(0, -2), 1, ...b.shape.slice(-2)]));
  return y.reshape([...y.shape.slice(0, -3), n, y.shape.at(-1)!]);
}

/** Whether a crossbar computes exactly what the floating-point matmul does. */
export function isPerfect(x: Crossbar): boolean {
  return (
    x.cells.kind === 'analog' &&
    x.program.kind === 'none' &&
    x.readNoise.kind === 'none' &&
    x.drift.kind === 'none' &&
    x.outputNoise.kind === 'none' &&
    x.dac.kind === 'ideal' &&
    x.adc.kind === 'ideal' &&
    x.mapping.clip.kind === 'none'
  );
}
