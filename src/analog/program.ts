/**
 * Static weights into crossbars, once per Monte Carlo instance (O(parameters), in JavaScript):
 * tile → map to conductances → quantise and bit-slice → programming noise → drift at time t
 * → drift compensation. The result is what the analog MVM multiplies by: per bit slice, the
 * effective weights in normalised units ((G+ − G−)/ΔG, so a device at G_MAX counts 1), their
 * squared conductances for read noise, and the digital scale that brings outputs back.
 */
import type { HostArray } from '../graph/ndarray.js';
import { InputError } from '../util/errors.js';
import type { Rng } from '../util/math.js';
import { pcmAtTime, pcmDriftNu } from './devices/pcm.js';
import { type CellView, compensationGains, compensationOf, readTile } from './drift-compensation.js';
import { type Crossbar, sliceCount } from './spec.js';
import { VALUE_WRITE, writeKindOf, writesPerValue } from './write-noise.js';

export interface Span {
  start: number;
  size: number;
}

/** Splits `n` into tiles of at most `max`: full tiles then the remainder, or as even as possible. */
export function splitDim(n: number, max: number, split: 'fixed' | 'even'): Span[] {
  const count = Math.ceil(n / max);
  const spans: Span[] = [];
  let start = 0;
  for (let i = 0; i < count; i++) {
    const size =
      split === 'fixed' ? Math.min(max, n - start) : Math.floor(n / count) + (i < n % count ? 1 : 0);
    spans.push({ start, size });
    start += size;
  }
  return spans;
}

/** The cell arrays of one programmed layer. */
export interface CellArrays {
  weights: Float32Array;
  squares: Float32Array;
}

export interface ProgrammedWeights {
  /** Effective normalised weights per slice, [slices, rowTiles, rows, out] (rows zero-padded). */
  weights: Float32Array;
  /**
   * (G+² + G−²)/ΔG² per device pair, same layout: the variance factor of relative read noise;
   * empty where the crossbar has no read noise (nothing reads it, and it is as large as the weights).
   */
  squares: Float32Array;
  /** Output scale per (row tile, column): weight units per normalised unit, drift compensation included. */
  scale: Float32Array;
  /** Recombination factor of each slice (shift-add weights; sum of slice maxima = 1). */
  sliceWeights: number[];
  rowTiles: Span[];
  /** Rows per tile (the padded tile height). */
  rows: number;
  inDim: number;
  outDim: number;
}

/** Conductance at the evaluation time (drift and accumulated read noise), in µS, for one crossbar and time. */
function atTimeOf(x: Crossbar, timeS: number): (gProg: number, rng: Rng) => number {
  const drift = x.drift;
  if (drift.kind === 'none') return (gProg) => gProg;
  const gMaxUS = x.mapping.gMaxUS;
  const at = pcmAtTime(timeS, { gMaxUS, ...drift });
  return (gProg, rng) => at(gProg, pcmDriftNu(gProg, gMaxUS, rng), rng);
}

/** Clip bound of a layer's weights (Infinity when not clipped). */
function clipBound(w: Float32Array, x: Crossbar): number {
  const c = x.mapping.clip;
  if (c.kind === 'none') return Infinity;
  if (c.kind === 'fixed') return c.max;
  let s = 0;
  let s2 = 0;
  for (const v of w) {
    s += v;
    s2 += v * v;
  }
  const mean = s / w.length;
  return c.n * Math.sqrt(Math.max(s2 / w.length - mean * mean, 0));
}

/**
 * The weight that maps to G_MAX for each (row tile, column), [R·C]: max |W| (clipped to the
 * spec's `mapping.clip`) over the column, or over its column tile, within the row tile. 0 for an
 * all-zero tile (callers pick a positive stand-in).
 */
export function weightScales(
  w: Float32Array,
  outDim: number,
  x: Crossbar,
  rowTiles: readonly Span[],
): Float32Array {
  const bound = clipBound(w, x);
  const colTiles = splitDim(outDim, x.tile.cols, x.tile.split);
  const scales = new Float32Array(rowTiles.length * outDim);
  rowTiles.forEach((rt, t) => {
    for (const ct of colTiles) {
      const colMax = new Float64Array(ct.size);
      for (let i = rt.start; i < rt.start + rt.size; i++) {
        for (let c = 0; c < ct.size; c++)
          colMax[c] = Math.max(colMax[c]!, Math.min(Math.abs(w[i * outDim + ct.start + c]!), bound));
      }
      const tileMax = Math.max(...colMax);
      for (let c = 0; c < ct.size; c++)
        scales[t * outDim + ct.start + c] = x.mapping.scale === 'column' ? colMax[c]! : tileMax;
    }
  });
  return scales;
}

/**
 * Programs a weight matrix W [in, out] (x·W) into crossbars: rows take inputs, columns outputs.
 * `timeS` is the time since programming at which the weights are read.
 */
/**
 * The fraction ρ of [G_MIN, G_MAX] a column spans when its G_MAX is scaled by η (post-training
 * conductance-range optimisation or a learned η): G_MAX' = max(G_MIN, η·G_MAX), never below 1 %
 * of the span so that a column keeps a usable range.
 */
export function columnSpan(eta: number, gMinUS: number, gMaxUS: number): number {
  const top = Math.max(gMinUS, Math.min(1, eta) * gMaxUS);
  return Math.max((top - gMinUS) / (gMaxUS - gMinUS), 0.01);
}

/**
 * The programmed cells of `x` as integer codes, where noise-free bit slices make them so: a
 * differential pair's slice of digit d (sign s) holds k = s·d, its weight (G+ − G−)/ΔG = k/L and
 * its square (G+² + G−²)/ΔG² = 2r² + 2r·|k|/L + k²/L² (r = G_MIN/ΔG, L the cell's levels), as
 * `programWeights` writes them (to rounding). Null for analog cells, programming noise, drift, an
 * offset mapping, weights not scaled to G_MAX, column ranges, or cells of more than 4 bits.
 */
export function cellCodes(x: Crossbar): { unit: number; squares: [number, number, number] } | null {
  const m = x.mapping;
  if (
    x.cells.kind !== 'quantized' ||
    x.cells.bitsPerCell > 4 ||
    x.program.kind !== 'none' ||
    x.drift.kind !== 'none' ||
    m.kind !== 'differential' ||
    m.scale === 'none' ||
    m.conductanceRange.kind !== 'full'
  )
    return null;
  const levels = 2 ** x.cells.bitsPerCell - 1;
  const r = m.gMinUS / (m.gMaxUS - m.gMinUS);
  return { unit: 1 / levels, squares: [2 * r * r, (2 * r) / levels, 1 / levels ** 2] };
}

export function programWeights(
  w: HostArray,
  x: Crossbar,
  timeS: number,
  rng: Rng,
  /** η per (row tile, column), [R·C], for a calibrated or learned conductance range. */
  columnScale?: Float32Array,
  /** Arrays of the layout's size to program into (an earlier instance's cells), else new ones. */
  into?: CellArrays,
  /** The noise of drift compensation's periphery readouts (`runProgramJob` gives each layer its own stream), else `rng`. */
  readoutRng: Rng = rng,
): ProgrammedWeights {
  const [inDim, outDim] = w.shape as [number, number];
  const src = w.data as Float32Array;
  const rowTiles = splitDim(inDim, x.tile.rows, x.tile.split);
  const colTiles = splitDim(outDim, x.tile.cols, x.tile.split);
  const rows = Math.max(...rowTiles.map((t) => t.size));
  const nR = rowTiles.length;
  const slices = sliceCount(x.cells);
  const size = slices * nR * rows * outDim;
  const readNoise = x.readNoise.kind !== 'none';
  const squaresSize = readNoise ? size : 0;
  // padded rows stay zero
  const reused = into?.weights.length === size && into.squares.length === squaresSize;
  const weights = reused ? into.weights.fill(0) : new Float32Array(size);
  const squares = reused ? into.squares.fill(0) : new Float32Array(squaresSize);
  const scale = new Float32Array(nR * outDim);
  const { gMinUS: gMin, gMaxUS: gMax } = x.mapping;
  const dG = gMax - gMin;
  const levels = x.cells.kind === 'quantized' ? 2 ** x.cells.weightBits - 1 : 0;
  const cellLevels = x.cells.kind === 'quantized' ? 2 ** x.cells.bitsPerCell - 1 : 1;
  const sliceWeights = Array.from({ length: slices }, (_, j) =>
    x.cells.kind === 'quantized' ? (cellLevels * 2 ** (x.cells.bitsPerCell * j)) / levels : 1,
  );
  const offset = x.mapping.kind === 'offset';
  if (columnScale && offset) {
    throw new InputError('mapping.conductanceRange', "a per-column range needs mapping.kind 'differential'");
  }
  if (columnScale && columnScale.length !== nR * outDim) {
    throw new RangeError(`${columnScale.length} column scales for ${nR} row tiles × ${outDim} columns`);
  }
  // per device: target → programmed (the drift compensation's reference) → at time t; no
  // allocation per device (~22M weights in DeiT-S: a double written to a captured variable
  // would be boxed at every device)
  // written per value (writeSqrt's `per: 'value'`): the law once on the value's device, whose
  // slices are then programmed exactly
  const writeValue = writesPerValue(x) ? VALUE_WRITE.device(x) : null;
  const program = writeValue ? (g: number) => g : writeKindOf(x).device(x.program, x.mapping);
  const atTime = atTimeOf(x, timeS);
  const quantized = x.cells.kind === 'quantized';
  const bitsPerCell = x.cells.kind === 'quantized' ? x.cells.bitsPerCell : 0;
  const digitBase = Array.from({ length: slices }, (_, j) => 2 ** (bitsPerCell * j));
  const compensation = compensationOf(x);
  const layout = { sliceWeights, rowTiles: nR, rows, outDim };
  // a periphery readout reads the programmed cells too: they are kept in cells of the same layout
  const reference: CellView | null =
    compensation?.readout === 'periphery'
      ? { ...layout, weights: new Float32Array(size), squares: new Float32Array(squaresSize) }
      : null;

  // scale: max|W| over the tile, or over each column of it
  const maxima = weightScales(src, outDim, x, rowTiles);
  rowTiles.forEach((rt, t) => {
    for (const ct of colTiles) {
      let ideal = 0;
      let real = 0;
      const colIdeal = new Float64Array(ct.size);
      const colReal = new Float64Array(ct.size);
      for (let c = 0; c < ct.size; c++) {
        const col = ct.start + c;
        const s = maxima[t * outDim + col]! || 1;
        // 'none': conductances still span the range, but the MVM multiplies by W itself
        const unscale = x.mapping.scale === 'none' ? s : 1;
        // a shrunk column range: devices at ρ of their targets, the digital gain restores 1/ρ
        const rho = columnScale ? columnSpan(columnScale[t * outDim + col]!, gMin, gMax) : 1;
        scale[t * outDim + col] = s / unscale / rho;
        for (let i = 0; i < rt.size; i++) {
          let wn = Math.max(-1, Math.min(1, src[(rt.start + i) * outDim + col]! / s));
          if (writeValue) {
            const q = quantized ? Math.round(Math.abs(wn) * levels) / levels : Math.abs(wn);
            wn = offset
              ? 2 * writeValue((Math.sign(wn) * q + 1) / 2, rng) - 1
              : Math.sign(wn) * Math.min(writeValue(q * rho, rng) / rho, 1);
          }
          const mag = quantized ? Math.round(Math.abs(wn) * levels) : Math.abs(wn);
          for (let j = 0; j < slices; j++) {
            // the slice's share of the magnitude in [0, 1] (the whole magnitude for analog cells)
            const digit = quantized ? (Math.floor(mag / digitBase[j]!) % (cellLevels + 1)) / cellLevels : mag;
            const signed = wn < 0 ? -digit : digit;
            const at = ((j * rowTiles.length + t) * rows + i) * outDim + col;
            let eff: number;
            let before: number;
            if (offset) {
              const g0 = program(gMin + ((signed + 1) / 2) * dG, rng);
              const g = atTime(g0, rng);
              eff = (2 * (g - gMin)) / dG - 1;
              before = (2 * (g0 - gMin)) / dG - 1;
              if (readNoise) squares[at] = (4 * g * g) / (dG * dG);
              if (readNoise && reference) reference.squares[at] = (4 * g0 * g0) / (dG * dG);
            } else {
              const gp0 = program(gMin + Math.max(signed, 0) * rho * dG, rng);
              const gp = atTime(gp0, rng);
              const gn0 = program(gMin + Math.max(-signed, 0) * rho * dG, rng);
              const gn = atTime(gn0, rng);
              eff = (gp - gn) / dG;
              before = (gp0 - gn0) / dG;
              if (readNoise) squares[at] = (gp * gp + gn * gn) / (dG * dG);
              if (readNoise && reference) reference.squares[at] = (gp0 * gp0 + gn0 * gn0) / (dG * dG);
            }
            weights[at] = eff * unscale;
            if (reference) reference.weights[at] = before * unscale;
            const sw = sliceWeights[j]!;
            ideal += Math.abs(before) * sw;
            real += Math.abs(eff) * sw;
            colIdeal[c]! += Math.abs(before) * sw;
            colReal[c]! += Math.abs(eff) * sw;
          }
        }
      }
      // drift compensation: the digital gain that restores the mean |output| of the programmed state,
      // as the periphery reads it right after programming and now, or from the ideal cells
      if (reference) {
        const gains = compensationGains(
          readTile(reference, x, t, rt, ct, readoutRng),
          readTile({ ...layout, weights, squares }, x, t, rt, ct, readoutRng),
          rt.size,
          compensation!.perColumn,
        );
        for (let c = 0; c < ct.size; c++) scale[t * outDim + ct.start + c]! *= gains[c]!;
      } else if (compensation) {
        for (let c = 0; c < ct.size; c++) {
          const gain = compensation.perColumn ? colIdeal[c]! / (colReal[c]! || 1) : ideal / (real || 1);
          scale[t * outDim + ct.start + c]! *= gain;
        }
      }
    }
  });
  return { weights, squares, scale, sliceWeights, rowTiles, rows, inDim, outDim };
}
