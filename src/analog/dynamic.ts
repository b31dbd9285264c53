/**
 * Products with an operand written into crossbars at run time (Kᵀ for QKᵀ, V for S·V): the
 * operand is mapped, quantised and bit-sliced in the graph and gets fresh write noise for
 * every input, then multiplied like a static layer. Shapes: x [B, H, N, D] inputs,
 * w [B, H, D, C] the written operand (D rows, C columns).
 */
import { hostArray } from '../graph/ndarray.js';
import { numel } from '../graph/shape.js';
import { concat, constant, noise, type Tensor } from '../graph/tensor.js';
import { InputError } from '../util/errors.js';
import { seedFor } from '../util/math.js';
import { calibratedAdc } from './adc.js';
import { calibrationError, digits } from './dac.js';
import { analogMvm } from './mvm.js';
import { nativeMvm } from './native-mvm.js';
import { digitalGain, type Mvm, type WrittenOperand } from './products.js';
import { splitDim } from './program.js';
import { type Crossbar, sliceCount } from './spec.js';
import { VALUE_WRITE, writeKindOf, writesPerValue } from './write-noise.js';

/**
 * A hook between mapping and write noise (ClipFormer's transform acts here). It receives the
 * conductance of one device of the differential pair, G = |w|/max·(G_MAX − G_MIN) + G_MIN in
 * µS at full precision (before quantisation and bit slicing; the other device of the pair sits
 * at G_MIN), and returns the conductance to write instead.
 */
export type ConductanceTransform = (g: Tensor, xbar: Crossbar) => Tensor;

/** Pads axis `axis` of t from n to `to` entries with zeros (via one gather). */
function padAxis(t: Tensor, axis: number, to: number): Tensor {
  const n = t.shape[axis]!;
  if (n === to) return t;
  const zeros = constant(
    hostArray(
      'float32',
      t.shape.map((d, i) => (i === axis ? 1 : d)),
    ),
  );
  const idx = Int32Array.from({ length: to }, (_, i) => Math.min(i, n));
  return concat([t, zeros], axis).gather(constant(hostArray('int32', [to], idx)), axis);
}

/** N(0, 1) noise per written cell [J, B, …]: keyed by the sample, along axis 1. */
const cellNoise = (shape: readonly number[], seed: number): Tensor =>
  noise(shape, { seed, batchAxis: 1, batch: shape[1]! });

/** Conductances g (µS) [J, B, …] written with fresh noise at every run. */
const writeCells = (g: Tensor, x: Crossbar, seed: number): Tensor =>
  x.program.kind === 'none' ? g : writeKindOf(x).tensor(x.program, x.mapping)(g, cellNoise(g.shape, seed));

/**
 * The signed unit values w [B, …] written with the law once per value (`per: 'value'`): each
 * value's magnitude, quantised to the weight bits, sets its device's conductance (the pair's
 * other device stays at G_MIN, where the law's noise vanishes; with the offset mapping, the one
 * device holds (w + 1)/2), and one draw per value and sample writes it.
 */
function writeValues(w: Tensor, x: Crossbar, seed: number): Tensor {
  const levels = x.cells.kind === 'analog' ? 0 : 2 ** x.cells.weightBits - 1;
  const mag = levels ? w.abs().mul(levels).round().div(levels) : w.abs();
  const write = VALUE_WRITE.tensor(x);
  const xi = cellNoise([1, ...w.shape], seed).reshape(w.shape);
  if (x.mapping.kind === 'offset') return write(mag.mul(w.sign()).add(1).mul(0.5), xi).mul(2).sub(1);
  return write(mag, xi).mul(w.sign());
}

/**
 * What the native kernel writes a differential operand's cells from: the signed unit values,
 * the write noise `writeCells` draws (same seeds and shapes) and the constants of the graph below,
 * as float32. Null for the offset mapping (the graph computes it).
 */
function writtenOperand(wn: Tensor, slices: number, xbar: Crossbar, seed: number): WrittenOperand | null {
  if (xbar.mapping.kind === 'offset') return null;
  const f = Math.fround;
  const { gMinUS: gMin, gMaxUS: gMax } = xbar.mapping;
  const dG = gMax - gMin;
  const write = writeKindOf(xbar);
  const shape = [slices, ...wn.shape];
  const cells = xbar.cells;
  return {
    unit: wn,
    noise:
      xbar.program.kind === 'none'
        ? null
        : [cellNoise(shape, seedFor(seed, 'write+')), cellNoise(shape, seedFor(seed, 'write-'))],
    params: {
      writeKind: write.code,
      writeNoiseScale: f(write.scale(xbar.program, xbar.mapping)),
      cellLevels: cells.kind === 'analog' ? 0 : 2 ** cells.weightBits - 1,
      cellBase: cells.kind === 'analog' ? 1 : 2 ** cells.bitsPerCell,
      gMin: f(gMin),
      gMax: f(gMax),
      dG: f(dG),
      dGSquared: f(dG * dG),
    },
  };
}

/**
 * A calibrated ADC's tensors for `ranges` [R·C] (C padded to whole column tiles): full scale over
 * each column's range, [R, 1, C], and its inverse, the column's step over the full-scale one.
 */
function calibratedColumns(ranges: Float32Array | undefined, nR: number, c: number, rows: number) {
  if (!ranges) throw calibrationError('attention.device.adc.range', 'calibrated');
  if (ranges.length !== nR * c)
    throw new RangeError(
      `${ranges.length} ADC ranges for ${nR} row tiles × ${c} columns of the K/V crossbars`,
    );
  const tensor = (v: Float32Array) => constant(hostArray('float32', [nR, 1, c], v));
  return {
    adcGains: tensor(ranges.map((r) => rows / r)),
    stepRatio: tensor(ranges.map((r) => r / rows)),
  };
}

/** A calibrated ADC range of a product written per input, and a probe of its values before the ADC. */
export interface DynamicAdc {
  /**
   * ±range per (row tile, padded column) [R·C'], normalised output units (`AnalogModel.adcRanges`):
   * one range per physical column of the product's crossbars, shared by every head and input.
   */
  ranges?: Float32Array | undefined;
  probe?: Mvm['probe'];
}

/**
 * x·w with w written into crossbars for this input. x: [B,H,N,D], w: [B,H,D,C] → [B,H,N,C].
 * `adc`: its calibrated ADC ranges (which a calibrated `adc.range` needs) and a probe.
 */
export function dynamicProduct(
  x: Tensor,
  w: Tensor,
  xbar: Crossbar,
  seed: number,
  transform?: ConductanceTransform,
  adc: DynamicAdc = {},
): Tensor {
  const lead = x.shape.slice(0, -2);
  const [n, d] = x.shape.slice(-2) as [number, number];
  const c = w.shape[w.rank - 1]!;
  const rowTiles = splitDim(d, xbar.tile.rows, xbar.tile.split);
  const nR = rowTiles.length;
  const rows = Math.max(...rowTiles.map((t) => t.size));
  if (xbar.tile.split === 'even' && rowTiles.some((t) => t.size !== rows)) {
    // uneven tiles would need per-tile padding; fixed-size blocks keep the graph simple
    throw new InputError(
      'attention.device',
      `tile.split 'even': ${d} rows do not split evenly into ${nR} tiles of ${rows}; use 'fixed'`,
    );
  }
  const nC = Math.ceil(c / xbar.tile.cols);
  const cPad = nC * xbar.tile.cols;

  // inputs [..., R, N, rows]; operand [..., R, rows, cPad]
  const xt = padAxis(x, x.rank - 1, nR * rows)
    .reshape([...lead, n, nR, rows])
    .transpose([...lead.keys(), lead.length + 1, lead.length, lead.length + 2]);
  const wt = padAxis(padAxis(w, w.rank - 2, nR * rows), w.rank - 1, cPad).reshape([...lead, nR, rows, cPad]);

  // scale: max|w| per tile (or column), the digital gain back to operand units
  const absT = wt.abs();
  if (xbar.mapping.scale === 'none')
    throw new InputError('attention.device', "mapping.scale 'none' is not supported; use 'tile' or 'column'");
  // per column [..., R, 1, cPad], or per tile [..., R, 1, nC, 1] (one value per block of cols)
  const block = xbar.mapping.scale === 'column' ? 1 : xbar.tile.cols;
  const scale = (
    block === 1
      ? absT.max(-2, true)
      : absT.reshape([...lead, nR, rows, nC, block]).max([lead.length + 1, lead.length + 3], true)
  ).maximum(1e-30);
  const unit = (
    block === 1
      ? wt.div(scale)
      : wt
          .reshape([...lead, nR, rows, nC, block])
          .div(scale)
          .reshape(wt.shape)
  ).clip(-1, 1);
  // the transform acts on the device conductance of the whole value, so a clip at β·G_MAX
  // empties the top bit slices instead of distorting every slice's cells
  const { gMinUS: gMin, gMaxUS: gMax } = xbar.mapping;
  const dG = gMax - gMin;
  const transformed = transform
    ? transform(unit.abs().mul(dG).add(gMin), xbar).sub(gMin).div(dG).clip(0, 1).mul(unit.sign())
    : unit;
  // written per value: the noisy values' cells are then written exactly
  const perValue = writesPerValue(xbar);
  const wn = perValue ? writeValues(transformed, xbar, seedFor(seed, 'write value')) : transformed;
  const cellXbar: Crossbar = perValue ? { ...xbar, program: { kind: 'none' } } : xbar;

  // magnitudes per bit slice in [0, 1], signed: [J, ..., R, rows, cPad]
  const cells = xbar.cells;
  let signed: Tensor;
  let sliceWeights: number[];
  if (cells.kind === 'analog') {
    signed = wn.reshape([1, ...wn.shape]);
    sliceWeights = [1];
  } else {
    const levels = 2 ** cells.weightBits - 1;
    const per = 2 ** cells.bitsPerCell;
    const j = sliceCount(cells);
    const mag = wn.abs().mul(levels).round();
    signed = digits(mag, per, j)
      .div(per - 1)
      .mul(wn.sign());
    sliceWeights = Array.from({ length: j }, (_, i) => ((per - 1) * per ** i) / levels);
  }

  const target = (v: Tensor) => v.maximum(0).mul(dG).add(gMin);
  let eff: Tensor;
  let squares: Tensor;
  if (xbar.mapping.kind === 'offset') {
    const g = writeCells(
      signed
        .add(1)
        .mul(0.5 * dG)
        .add(gMin),
      cellXbar,
      seedFor(seed, 'write'),
    );
    eff = g
      .sub(gMin)
      .mul(2 / dG)
      .sub(1);
    squares = g.mul(g).mul(4 / (dG * dG));
  } else {
    const gp = writeCells(target(signed), cellXbar, seedFor(seed, 'write+'));
    const gn = writeCells(target(signed.neg()), cellXbar, seedFor(seed, 'write-'));
    eff = gp.sub(gn).div(dG);
    squares = gp
      .mul(gp)
      .add(gn.mul(gn))
      .div(dG * dG);
  }

  const useSquares = xbar.readNoise.kind !== 'none';
  // a calibrated ADC: each column's step over the full-scale one joins the digital scale, per column
  const calibrated = calibratedAdc(xbar) ? calibratedColumns(adc.ranges, nR, cPad, rows) : null;
  const gainBlock = calibrated ? 1 : block;
  const gain = digitalGain(
    calibrated
      ? (block === 1 ? scale : scale.expand([...lead, nR, 1, nC, block]).reshape([...lead, nR, 1, cPad])).mul(
          calibrated.stepRatio,
        )
      : scale,
    gainBlock,
    xbar,
    rows,
  );
  const written = writtenOperand(wn, sliceWeights.length, cellXbar, seed);
  const mvm: Mvm = {
    x: xt,
    xbar,
    adcGains: calibrated?.adcGains,
    probe: adc.probe,
    operand: { weights: eff, squares: useSquares ? squares : null, ...(written ? { written } : {}) },
    sliceWeights,
    rows,
    seed,
    batch: lead[0] ?? 1,
  };
  const fit = (out: Tensor) => (cPad === c ? out : out.slice(-1, 0, c));
  // the native kernel, where it applies, quantises the inputs, applies the gain and sums the
  // row tiles itself
  const fused = nativeMvm(mvm, {
    scale: gain.scaled.reshape([numel(lead), nR, cPad / gainBlock]),
    block: gainBlock,
  });
  if (fused) return fit(fused.reshape([...lead, n, cPad]));
  const y = analogMvm(
    mvm,
    Array.from({ length: nC }, () => xbar.tile.cols),
    gain.apply,
  );
  return fit(nR === 1 ? y.reshape([...lead, n, cPad]) : y.sum(lead.length));
}
