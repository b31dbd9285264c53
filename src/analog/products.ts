/**
 * The crossbar products of the analog MVM as graph ops: DAC planes × weight slices, with read and
 * output noise, through the ADC, recombined over planes and slices, and the digital periphery
 * after (gain, weighted sums). Outputs are in ADC steps. Shapes: `…` are batch dims shared by
 * inputs and weights (none for static weights; B, H for K/V written per input); R row tiles of
 * `rows` rows, N input vectors, C outputs, J weight slices, K input planes.
 */
import { hostArray } from '../graph/ndarray.js';
import { constant, noise, type Tensor } from '../graph/tensor.js';
import type { WrittenCellsArgs } from '../runtime/native.js';
import type { CellCodes } from '../runtime/webgpu/crossbar.js';
import { seedFor } from '../util/math.js';
import { adcCodes, adcStep } from './adc.js';
import { type DacOut, planeScale } from './dac.js';
import type { Crossbar } from './spec.js';
import { tiledMatmul } from './tiling.js';

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
  /** The cells as integer codes, where they are (the GPU kernel then takes integer dot products). */
  codes?: CellCodes | null;
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
  params: Omit<WrittenCellsArgs, 'unit' | 'writeNoise' | 'writeSquares'>;
}

/** One analog MVM of tiled inputs, as `analogMvm` and `nativeMvm` compute it. */
export interface Mvm {
  /** Inputs [(…), R, N, rows]. */
  x: Tensor;
  xbar: Crossbar;
  /** Per-tile DAC ranges [R, 1, 1] of a calibrated or learned input range. */
  tileRanges?: Tensor | undefined;
  /**
   * With a calibrated ADC range, per row tile and column [R, 1, C]: the full-scale range over
   * the column's own (`AnalogModel.adcRanges`), by which the values before the ADC, in
   * full-scale steps, are multiplied just before the conversion.
   */
  adcGains?: Tensor | undefined;
  /**
   * Receives the values before the ADC of the first round and their unit, the full-scale ADC
   * step in normalised units (calibration reads them; the graph path then runs).
   */
  probe?: ((pre: readonly Tensor[], step: number) => void) | undefined;
  operand: Operand;
  /** Recombination weight of each weight slice, length J. */
  sliceWeights: readonly number[];
  rows: number;
  seed: number;
  /**
   * Samples in the batch: the first of the batch dims (…) when there are any, else N holds them
   * one after another (the noise of each is keyed by its sample, `noise` in graph/tensor.ts).
   */
  batch: number;
}

/**
 * Outputs are computed in ADC steps: 1/step, the plane scale and the read noise's σ are folded
 * into the (small) weight tensors, saving passes over the outputs. A calibrated ADC's step per
 * column is not folded in: the output noise is a fixed σ in normalised units before the ADC,
 * whatever the column's range, so the weights stay in full-scale steps, where read and output
 * noise are drawn with one σ each, and `Mvm.adcGains` rescales each column's sum at its ADC. Weights × `weightScale` are
 * ADC steps per plane unit; squares × `squareScale` are their (σ_R·…)² (0: no read noise).
 */
export function operandScales(xbar: Crossbar, rows: number): { weightScale: number; squareScale: number } {
  const weightScale = planeScale(xbar) / adcStep(xbar, rows);
  const sigma = xbar.readNoise.kind === 'relative' ? xbar.readNoise.sigma : 0;
  return { weightScale, squareScale: (sigma * weightScale) ** 2 };
}

/** The scales still to apply to an operand: none when it is stored in ADC steps. */
export const scalesLeft = (op: Operand, scales: ReturnType<typeof operandScales>) =>
  op.inSteps ? { weightScale: 1, squareScale: 1 } : scales;

/** The output noise's σ in ADC steps (0: none). */
export function outputSigma(xbar: Crossbar, rows: number): number {
  return xbar.outputNoise.kind === 'gaussian' ? xbar.outputNoise.sigma / adcStep(xbar, rows) : 0;
}

export interface Products {
  /** The values each product sees before its ADC, one [J, …, R, N, C] tensor per input plane. */
  pre: Tensor[];
  /**
   * Their ADC codes recombined over planes and slices, [(…), R, N, C] in ADC steps (× `adcStep`
   * for normalised units; callers fold it into their digital gain, one pass). `inRange`: no
   * conversion saturated (bound management tested it), so the ADC's clip is left out.
   */
  codes(inRange: boolean): Tensor;
}

/**
 * Crossbar products of DAC planes [K, …, R, N, rows] with the operand's weights [J, …, R, rows, C]
 * (and their squares, for read noise), with noise drawn from `seed`: the values before the ADC,
 * and their codes.
 */
export function products(d: DacOut, m: Mvm, seed = m.seed): Products {
  // one input plane at a time: the [J, …, R, N, C] products of a plane are the largest tensor,
  // not [K, J, …] (7× smaller for 8-bit bit-serial inputs)
  const { xbar, rows, operand: op } = m;
  const scales = operandScales(xbar, rows);
  const { weightScale, squareScale } = scalesLeft(op, scales);
  const w = weightScale === 1 ? op.weights : op.weights.mul(weightScale);
  const sq =
    op.squares && scales.squareScale > 0
      ? squareScale === 1
        ? op.squares
        : op.squares.mul(squareScale)
      : null;
  const k = d.planeWeights.length;
  const pre = Array.from({ length: k }, (_, p) => {
    const plane =
      k === 1
        ? d.planes.reshape(d.planes.shape.slice(1))
        : d.planes.slice(0, p, p + 1).reshape(d.planes.shape.slice(1));
    const y = sliceProducts(plane, w, sq, outputSigma(xbar, rows), m.batch, seedFor(seed, `plane${p}`)); // [J, …]
    return m.adcGains ? y.mul(m.adcGains) : y;
  });
  const shape = pre[0]!.shape.slice(1);
  const codes = (inRange: boolean) => {
    // plane outputs recombine as [1, J] × [J, M] products accumulated in 2-D (M = all output
    // elements): ONNX Runtime fuses each addition into the Gemm
    let acc: Tensor | null = null;
    pre.forEach((y, p) => {
      const term = weightedSum(
        adcCodes(y, xbar, inRange),
        m.sliceWeights.map((sw) => sw * d.planeWeights[p]!),
      );
      acc = acc ? term.add(acc) : term;
    });
    return acc!.reshape(shape);
  };
  return { pre, codes };
}

/**
 * One input plane [(…), R, N, rows] times every weight slice [J, …, R, rows, C] (weights in ADC
 * steps, squares pre-multiplied by (σ_R/step)²), with read and output noise: the values the
 * ADC converts, [J, …, R, N, C] in ADC steps. The read noise σ·sqrt(Σx²G²)·ξ₁ and the output
 * noise σ_out·ξ₂ of an output are independent Gaussians: their sum is drawn as one,
 * sqrt(σ²Σx²G² + σ_out²)·ξ, exactly in distribution (native/crossbar_products.cc does the same).
 */
function sliceProducts(
  x: Tensor,
  weights: Tensor,
  squares: Tensor | null,
  outSigma: number,
  batch: number,
  seed: number,
): Tensor {
  // a single tile and slice runs as 2-D products: ONNX Runtime then fuses the output noise into
  // its Gemm (C input), which costs nothing next to a separate pass over the outputs
  const batchDims = [...x.shape.slice(0, -2), ...weights.shape.slice(0, -2)];
  const flat = batchDims.every((d) => d === 1);
  const outShape = [
    ...(x.rank > weights.rank ? x.shape : weights.shape).slice(0, -2),
    x.shape.at(-2)!,
    weights.shape.at(-1)!,
  ];
  const as2d = (t: Tensor) => (flat ? t.reshape(t.shape.slice(-2)) : t);
  const xs = as2d(x);
  let y = tiledMatmul(xs, as2d(weights));
  if (squares || outSigma > 0) {
    // the samples lie along N ([(J, R,) N, C]) or along the first batch dim ([J, B, …, N, C])
    const batchAxis = flat ? 0 : x.rank === 3 ? y.rank - 2 : 1;
    const sigma = Math.fround(outSigma);
    const xi = (std: number) => noise(y.shape, { seed: seedFor(seed, 'noise'), std, batchAxis, batch });
    if (squares) {
      // G(1 + σξ) per device, exactly in distribution: σ·sqrt(Σ x²·G²)·ξ per output
      const variance = tiledMatmul(xs.mul(xs), as2d(squares));
      y = y.add((sigma > 0 ? variance.add(Math.fround(sigma * sigma)) : variance).sqrt().mul(xi(1)));
    } else {
      y = y.add(xi(sigma));
    }
  }
  return flat ? y.reshape(outShape) : y;
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

/**
 * The digital gain of an MVM's codes: ADC step × `scale` × each vector's DAC range, one pass over
 * the codes. `scale` is per column, [(…), R, 1, C], or per block of `block` columns (a column
 * tile), [(…), R, 1, C/block, 1]: small, so the range multiplies into it first. → `scaled`, the
 * scale × ADC step (what `nativeMvm` takes), and `apply`: codes [(…), R, N, C] with their DAC
 * range [(…), R, N, 1] → outputs [(…), R, N, C].
 */
export function digitalGain(scale: Tensor, block: number, xbar: Crossbar, rows: number) {
  const step = adcStep(xbar, rows);
  const scaled = step === 1 ? scale : scale.mul(step);
  const apply = (codes: Tensor, range: Tensor): Tensor => {
    if (block === 1) return codes.mul(scaled).mul(range);
    const gain = scaled.mul(range.reshape([...range.shape.slice(0, -1), 1, 1]));
    const shape = codes.shape;
    return codes
      .reshape([...shape.slice(0, -1), shape.at(-1)! / block, block])
      .mul(gain)
      .reshape(shape);
  };
  return { scaled, apply };
}
