/**
 * The analog rewrite of a model: every crossbar product the spec maps is replaced by its
 * analog version (static layers from weights programmed once per Monte Carlo instance;
 * attention's QKᵀ and S·V, when on crossbars, from K and V written per input). Programmed
 * weights are params fed at every run, so a new instance needs no recompilation.
 */
import { type HostArray, hostArray } from '../graph/ndarray.js';
import { hostCall, param, type Tensor } from '../graph/tensor.js';
import { digital, type Matmuls } from '../models/encoder.js';
import type { Model } from '../models/index.js';
import { layerKind } from '../models/layer-names.js';
import type { CellCodes } from '../runtime/webgpu/crossbar.js';
import { InputError } from '../util/errors.js';
import { seedFor } from '../util/math.js';
import { NOISE_STREAM } from '../util/philox.js';
import { calibratedAdc } from './adc.js';
import { calibrationError } from './dac.js';
import { compensationOf } from './drift-compensation.js';
import { type ConductanceTransform, type DynamicAdc, dynamicProduct } from './dynamic.js';
import { analogMvm } from './mvm.js';
import { nativeMvm } from './native-mvm.js';
import { digitalGain, type Mvm, operandScales, weightedSum } from './products.js';
import { type CellArrays, cellCodes, type ProgrammedWeights, splitDim } from './program.js';
import { type ProgramJob, programInWorkers, runProgramJob } from './program-workers.js';
import type { ResolvedSpec } from './resolve.js';
import { type Crossbar, isPerfect, sliceCount } from './spec.js';
import { tileInputs } from './tiling.js';

/**
 * Refuses to continue results whose noise samples a seed would not give again: drawn from
 * another noise stream (`noiseStream` absent: stream 1). Names the file and how to continue.
 * (The native kernels and the ONNX graphs draw the same noise: results of either continue.)
 */
export function assertSameNoise(file: string, recorded: { noiseStream?: number }): void {
  const stream = recorded.noiseStream ?? 1;
  if (stream !== NOISE_STREAM)
    throw new InputError(file, {
      field: 'noiseStream',
      value: stream,
      allowed:
        `this xbar draws stream ${NOISE_STREAM} (Philox keyed by sample; streams 1 and 2 took windows of a ` +
        `noise table), so a seed would give other numbers: continue it with an xbar that draws stream ${stream}, or use another --out`,
    });
}

interface StaticLayer {
  xbar: Crossbar;
  /** Per-tile DAC ranges [R, 1, 1] (calibrated or learned input ranges), fed as a param. */
  inputRange?: Tensor;
  weight: Tensor;
  /**
   * The programmed cells as params, held for every run; null where they are programmed again at
   * every run as the graph reaches the layer (`AnalogModel.prepare`: an instance over the budget).
   */
  cells: { weights: Tensor; squares: Tensor } | null;
  /** The cells' shape, [slices, row tiles, rows, out]. */
  shape: number[];
  /**
   * Digital output scale: [R, 1, C] per column, or [R, 1, C/block, 1] per column tile (with a
   * calibrated ADC range, × each column's step over the full-scale one).
   */
  scale: Tensor;
  /** With a calibrated ADC range, [R, 1, C]: full scale over each column's range (`Mvm.adcGains`). */
  adcGains?: Tensor;
  /** Columns that share one scale value (1: per column). */
  scaleBlock: number;
  /** How the cells are laid out; their values live in the params `cells` and `scale` only. */
  layout: CellLayout;
}

/** A programming's shape without its values (the params hold those, once). */
type CellLayout = Omit<ProgrammedWeights, 'weights' | 'squares' | 'scale'>;

const layoutOf = ({ weights: _w, squares: _s, scale: _c, ...layout }: ProgrammedWeights): CellLayout =>
  layout;

/**
 * Columns sharing one output scale: a whole column tile unless the mapping or the drift
 * compensation scales columns (then 1), or column tiles differ in width.
 */
function scaleBlock(xbar: Crossbar, outDim: number): number {
  const perColumn =
    xbar.mapping.scale === 'column' ||
    xbar.driftCompensation.startsWith('column') ||
    xbar.mapping.conductanceRange.kind !== 'full' ||
    calibratedAdc(xbar);
  if (perColumn) return 1;
  const widths = new Set(splitDim(outDim, xbar.tile.cols, xbar.tile.split).map((t) => t.size));
  return widths.size === 1 ? [...widths][0]! : 1;
}

/**
 * The programmed cells in the units the products are computed in (`operandScales`): the graph
 * then multiplies by them as they are, where a scale applied in it is a pass over every weight at
 * every run. Float32 products, as the graph's Mul gives them, in place: a programming's arrays
 * become the params' values, so the cells are held once (they are the bulk of an instance).
 */
function cellsInSteps(
  p: ProgrammedWeights,
  xbar: Crossbar,
): { weights: Float32Array; squares: Float32Array } {
  const { weightScale, squareScale } = operandScales(xbar, p.rows);
  const ws = Math.fround(weightScale);
  // without read noise the squares are never read: left as they are
  const ss = squareScale > 0 ? Math.fround(squareScale) : 1;
  return { weights: scaleInPlace(p.weights, ws), squares: scaleInPlace(p.squares, ss) };
}

/** The codes of `cellsInSteps`' cells (program.ts cellCodes, in ADC steps), or null. */
function codesInSteps(xbar: Crossbar, rows: number): CellCodes | null {
  const codes = cellCodes(xbar);
  if (!codes) return null;
  const { weightScale, squareScale } = operandScales(xbar, rows);
  const ss = squareScale > 0 ? Math.fround(squareScale) : 1;
  return {
    unit: codes.unit * Math.fround(weightScale),
    squares: [codes.squares[0] * ss, codes.squares[1] * ss, codes.squares[2] * ss],
  };
}

/** a × s as float32, in place (a loop: `Float32Array.map` is far slower and copies). */
function scaleInPlace(a: Float32Array, s: number): Float32Array {
  if (s !== 1) for (let i = 0; i < a.length; i++) a[i] = a[i]! * s;
  return a;
}

/** What the values before the ADC are multiplied by: the full scale (±rows) over each column's range. */
const adcGainsOf = (range: Float32Array, rows: number): Float32Array => range.map((r) => rows / r);

/** Bytes of a layer's cells held for every run: weights and, with read noise, squares per slice. */
function cellBytes(w: Tensor, xbar: Crossbar): number {
  const [inDim, outDim] = w.shape as [number, number];
  const tiles = splitDim(inDim, xbar.tile.rows, xbar.tile.split);
  const rows = tiles.length * Math.max(...tiles.map((t) => t.size));
  return 4 * sliceCount(xbar.cells) * rows * outDim * (xbar.readNoise.kind === 'none' ? 1 : 2);
}

/**
 * The most an instance's cells may take held for every run: $XBAR_CELLS_GB (10^9 bytes), else
 * 2 GB. Over it they are programmed again at every run, layer by layer (the same numbers, a
 * programming per batch): bit-sliced cells of a large model are several times its weights.
 */
export function cellsBudgetBytes(): number {
  const v = process.env['XBAR_CELLS_GB'];
  if (v === undefined || v === '') return 2e9;
  const gb = Number(v);
  if (!Number.isFinite(gb) || gb < 0)
    throw new InputError(`XBAR_CELLS_GB=${v}: use a number of GB ≥ 0 (10^9 bytes; 0: program every run)`);
  return gb * 1e9;
}

/**
 * The programmed scale [R·C], one value per block of columns; with a calibrated ADC range
 * (`adcRange`, per column: block 1), × each column's ADC step over the full-scale one.
 */
function blockScale(p: ProgrammedWeights, block: number, adcRange?: Float32Array): Float32Array {
  if (adcRange) return p.scale.map((s, i) => s * (adcRange[i]! / p.rows));
  if (block === 1) return p.scale.slice();
  return Float32Array.from({ length: p.scale.length / block }, (_, i) => p.scale[i * block]!);
}

export class AnalogModel {
  private readonly layers = new Map<string, StaticLayer>();
  /** Seed the static layers are programmed with (a stream per layer derives from it). */
  instance: number;
  /**
   * DAC range per input tile of each static layer, in input units, for the 'calibrated' and
   * 'learned' input-range kinds (methods/pto.ts fills it). Set before building graphs; change
   * values later with `setInputRanges` (no recompilation, no reprogramming).
   */
  readonly inputRanges = new Map<string, Float32Array>();
  /**
   * η per (row tile, column) of each static layer whose conductance range is 'calibrated' or
   * 'learned' (methods/pto.ts, or training). Set with `setColumnScales`, which reprograms.
   */
  readonly columnScales = new Map<string, Float32Array>();
  /**
   * The ADC's ±range per (row tile, column), [R·C] in normalised output units, of each static
   * layer and attention product (columns padded to whole tiles) whose `adc.range` is
   * 'calibrated' (methods/adc-range.ts). Set with `setAdcRanges` before building graphs.
   */
  readonly adcRanges = new Map<string, Float32Array>();
  /** Receives each product's values before the ADC as graphs are built (ADC calibration). */
  probe?: (name: string, pre: readonly Tensor[], step: number) => void;

  constructor(
    readonly hw: ResolvedSpec,
    /** Seed of the instance: the programming and the per-run noise streams of the graph. */
    readonly seed = 0,
    /** The transform of the K/V conductances of an attention product (by name), if any: ClipFormer. */
    readonly kvTransform?: (name: string) => ConductanceTransform | undefined,
  ) {
    this.instance = seed;
  }

  private mappedStatic(name: string): Crossbar | null {
    if (!this.hw.spec.mapped[layerKind(name)]) return null;
    const xbar = this.hw.crossbar(name);
    return isPerfect(xbar) ? null : xbar;
  }

  /** (Re)programs every static layer with an instance seed (values only; graphs stay valid). */
  program(instanceSeed: number): void {
    this.instance = instanceSeed;
    for (const [name, l] of this.layers) this.programLayer(name, l);
  }

  /** What programming layer `name` for the current instance takes (a stream per instance and layer). */
  private programJob(name: string, w: Tensor, xbar: Crossbar): ProgramJob {
    const range = xbar.mapping.conductanceRange.kind;
    const eta = this.columnScales.get(name);
    if (range !== 'full' && !eta) throw calibrationError(`${name}: mapping.conductanceRange`, range);
    if (calibratedAdc(xbar)) {
      if (!this.adcRanges.has(name)) throw calibrationError(`${name}: adc.range`, 'calibrated');
      // the readout would need each column's range as it programs: the '-ideal' kinds do not read
      if (compensationOf(xbar)?.readout === 'periphery')
        throw new InputError(`${name}: driftCompensation`, {
          field: 'driftCompensation',
          value: xbar.driftCompensation,
          allowed: "with adc.range 'calibrated' use 'global-ideal', 'column-ideal' or 'none'",
        });
    }
    return {
      weights: (w.attrs as { value: HostArray }).value,
      xbar,
      timeS: this.hw.spec.timeS,
      seed: seedFor(this.instance, name),
      ...(range === 'full' || !eta ? {} : { columnScale: eta }),
    };
  }

  /**
   * Programs every static layer of `model` that the spec maps, several at once in worker
   * threads (`programInWorkers`), before its graphs are built: the same cells as programming
   * each as the graph reaches it, in a fraction of the time on several cores (BENCHMARKS.md).
   * `reuse`: cell arrays by layer (an earlier instance's `takeCells`) to program into.
   */
  async prepare(model: Model, reuse: ReadonlyMap<string, CellArrays> = new Map()): Promise<void> {
    const layers = this.staticLayers(model);
    // over the budget, no cells are held: each run programs a layer as it reaches it (the
    // output scales, which the graphs embed, are programmed now)
    const perRun = layers.reduce((s, l) => s + cellBytes(l.weight, l.xbar), 0) > cellsBudgetBytes();
    const unprogrammed = layers.filter(({ name, weight }) => this.layers.get(name)?.weight !== weight);
    const programmed = await programInWorkers(
      unprogrammed.map((l) => {
        const into = perRun ? undefined : reuse.get(l.name);
        return { ...this.programJob(l.name, l.weight, l.xbar), ...(into ? { into } : {}), scaleOnly: perRun };
      }),
    );
    for (const [i, l] of unprogrammed.entries())
      this.staticLayer(l.name, l.weight, l.xbar, programmed[i], perRun);
  }

  /** The layers of `model` the spec maps to crossbars, with their weights (what programming reads). */
  staticLayers(model: Model): { name: string; weight: Tensor; xbar: Crossbar }[] {
    return model.linearLayers().flatMap(({ name, weight }) => {
      const xbar = this.mappedStatic(name);
      return xbar ? [{ name, weight, xbar }] : [];
    });
  }

  /**
   * Hands this instance's cell arrays, by layer, to the programming of another (`prepare`), so
   * that instances one after another take the memory of one, whenever the garbage collector
   * runs. Graphs built from this instance before cannot run afterwards (one built later
   * programs its layers again).
   */
  takeCells(): Map<string, CellArrays> {
    const data = (t: Tensor) => (t.attrs as { value: HostArray }).value.data as Float32Array;
    const cells = new Map(
      [...this.layers].flatMap(([name, { cells: c }]) =>
        c ? [[name, { weights: data(c.weights), squares: data(c.squares) }] as const] : [],
      ),
    );
    this.layers.clear();
    return cells;
  }

  /**
   * Sets per-column conductance scales η (a calibrated or learned conductance range) and
   * reprograms the layers already built: shrinking a column's range rewrites its devices.
   */
  setColumnScales(scales: ReadonlyMap<string, Float32Array>): void {
    for (const [name, eta] of scales) {
      this.columnScales.set(name, eta.slice());
      const l = this.layers.get(name);
      if (l) this.programLayer(name, l);
    }
  }

  /** Sets the calibrated ADC ranges per (row tile, column): graphs already built read the new values. */
  setAdcRanges(ranges: ReadonlyMap<string, Float32Array>): void {
    for (const [name, r] of ranges) {
      this.adcRanges.set(name, r.slice());
      const l = this.layers.get(name);
      if (l) this.programLayer(name, l);
    }
  }

  /** Replaces the per-tile input ranges (a re-calibration): graphs already built read the new values. */
  setInputRanges(ranges: ReadonlyMap<string, Float32Array>): void {
    for (const [name, r] of ranges) {
      this.inputRanges.set(name, r);
      const t = this.layers.get(name)?.inputRange;
      if (t) ((t.attrs as { value: HostArray }).value.data as Float32Array).set(r);
    }
  }

  private programLayer(name: string, l: StaticLayer): void {
    const p = runProgramJob({ ...this.programJob(name, l.weight, l.xbar), scaleOnly: !l.cells });
    l.layout = layoutOf(p);
    const data = (t: Tensor) => (t.attrs as { value: HostArray }).value.data as Float32Array;
    if (l.cells) {
      const cells = cellsInSteps(p, l.xbar);
      for (const [t, values] of [
        [l.cells.weights, cells.weights],
        [l.cells.squares, cells.squares],
      ] as const) {
        const a = t.attrs as { value: HostArray };
        a.value = { ...a.value, data: values };
      }
    }
    const adcRange = this.adcRanges.get(name);
    data(l.scale).set(blockScale(p, l.scaleBlock, adcRange));
    if (l.adcGains && adcRange) data(l.adcGains).set(adcGainsOf(adcRange, p.rows));
  }

  /**
   * Layer `name`'s cells for a graph: its params, or where they are programmed per run, a host
   * kernel that programs them when the run reaches the layer (after `anchor`, its input, is
   * computed), which the run frees once the product has read them. Programming is deterministic
   * per instance and layer, so both give the same cells. Squares: null without read noise.
   */
  private cellTensors(
    name: string,
    l: StaticLayer,
    anchor: Tensor,
  ): { weights: Tensor; squares: Tensor | null } {
    const useSquares = l.xbar.readNoise.kind !== 'none';
    if (l.cells) return { weights: l.cells.weights, squares: useSquares ? l.cells.squares : null };
    const shape = l.shape;
    // the programming's squares, from the weights' kernel to the squares' (which reads its output)
    let squares: Float32Array | null = null;
    const weights = hostCall(
      `program ${name}`,
      [l.weight, anchor],
      shape,
      () => {
        const job = { ...this.programJob(name, l.weight, l.xbar), cellsOnly: true };
        const cells = cellsInSteps(runProgramJob(job), l.xbar);
        squares = cells.squares;
        return { dtype: 'float32', shape, data: cells.weights };
      },
      'float32',
      true,
    );
    if (!useSquares) return { weights, squares: null };
    const squaresOut = hostCall(
      `program ${name} squares`,
      [weights],
      shape,
      () => {
        const data = squares!;
        squares = null;
        return { dtype: 'float32', shape, data };
      },
      'float32',
      true,
    );
    return { weights, squares: squaresOut };
  }

  /** Layer `name` on its crossbars: as built before, or programmed now (`programmed`: already). */
  private staticLayer(
    name: string,
    w: Tensor,
    xbar: Crossbar,
    programmed?: ProgrammedWeights,
    /** The cells are programmed at every run (`programmed` holds the scale only). */
    perRun = false,
  ): StaticLayer {
    const known = this.layers.get(name);
    if (known && known.weight === w) return known;
    const p = programmed ?? runProgramJob(this.programJob(name, w, xbar));
    const shape = [sliceCount(xbar.cells), p.rowTiles.length, p.rows, p.outDim];
    const block = scaleBlock(xbar, p.outDim);
    const nR = p.rowTiles.length;
    const cells = perRun ? null : cellsInSteps(p, xbar);
    const l: StaticLayer = {
      xbar,
      weight: w,
      cells: cells && {
        weights: param(`analog.${name}.weights`, hostArray('float32', shape, cells.weights)),
        squares: param(
          `analog.${name}.squares`,
          hostArray('float32', cells.squares.length > 0 ? shape : [0], cells.squares),
        ),
      },
      shape,
      scale: param(
        `analog.${name}.scale`,
        hostArray(
          'float32',
          block === 1 ? [nR, 1, p.outDim] : [nR, 1, p.outDim / block, 1],
          blockScale(p, block, this.adcRanges.get(name)),
        ),
      ),
      scaleBlock: block,
      layout: layoutOf(p),
    };
    const adcRange = this.adcRanges.get(name);
    if (adcRange) {
      if (adcRange.length !== nR * p.outDim)
        throw new RangeError(
          `${name}: ${adcRange.length} ADC ranges for ${nR} row tiles × ${p.outDim} columns`,
        );
      l.adcGains = param(
        `analog.${name}.adcGains`,
        hostArray('float32', [nR, 1, p.outDim], adcGainsOf(adcRange, p.rows)),
      );
    }
    const ranges = this.inputRanges.get(name);
    if (ranges) {
      if (ranges.length !== p.rowTiles.length) {
        throw new RangeError(
          `${name}: ${ranges.length} input ranges for ${p.rowTiles.length} input tiles of the crossbar`,
        );
      }
      l.inputRange = param(
        `analog.${name}.inputRange`,
        hostArray('float32', [p.rowTiles.length, 1, 1], ranges.slice()),
      );
    }
    this.layers.set(name, l);
    return l;
  }

  /** x·W + b on the crossbars of layer `name`, whatever `mapped` says (unit checks, `xbar mvm`). */
  linear(name: string, x: Tensor, w: Tensor, b?: Tensor): Tensor {
    const xbar = this.hw.crossbar(name);
    const y = isPerfect(xbar)
      ? x.matmul(w)
      : analogLinear(
          x,
          this.staticLayer(name, w, xbar),
          seedFor(seedFor(this.seed, 'run'), name),
          (anchor) => this.cellTensors(name, this.layers.get(name)!, anchor),
          this.probe && ((pre, step) => this.probe!(name, pre, step)),
        );
    return b ? y.add(b) : y;
  }

  /** Attention product `name`'s calibrated ADC ranges (refused without them) and probe. */
  private kvAdc(name: string): DynamicAdc {
    if (calibratedAdc(this.hw.attention!) && !this.adcRanges.has(name))
      throw calibrationError(`${name}: attention.device.adc.range`, 'calibrated');
    return {
      ranges: this.adcRanges.get(name),
      ...(this.probe ? { probe: (pre, step) => this.probe!(name, pre, step) } : {}),
    };
  }

  /** The products for a model graph: analog where the spec maps them, exact elsewhere. */
  matmuls(): Matmuls {
    const runSeed = seedFor(this.seed, 'run');
    return {
      linear: (name, x, w, b) =>
        this.mappedStatic(name) ? this.linear(name, x, w, b) : digital.linear(name, x, w, b),
      scores: (name, q, kT) =>
        this.hw.attention
          ? dynamicProduct(
              q,
              kT,
              this.hw.attention,
              seedFor(runSeed, name),
              this.kvTransform?.(name),
              this.kvAdc(name),
            )
          : digital.scores(name, q, kT),
      mix: (name, s, v) =>
        this.hw.attention
          ? dynamicProduct(
              s,
              v,
              this.hw.attention,
              seedFor(runSeed, name),
              this.kvTransform?.(name),
              this.kvAdc(name),
            )
          : digital.mix(name, s, v),
    };
  }
}

/**
 * x·W on crossbars for a programmed static layer, its cells from `cells` (given the tiled
 * input). x: (…, in) → (…, out)
 */
function analogLinear(
  x: Tensor,
  l: StaticLayer,
  seed: number,
  cells: (tiles: Tensor) => { weights: Tensor; squares: Tensor | null },
  probe?: Mvm['probe'],
): Tensor {
  const p = l.layout;
  const lead = x.shape.slice(0, -1);
  const n = lead.reduce((a, b) => a * b, 1);
  const nR = p.rowTiles.length;
  const tiles = tileInputs(x.reshape([n, p.inDim]), p.rowTiles, p.rows); // [R, N, rows]
  const gain = digitalGain(l.scale, l.scaleBlock, l.xbar, p.rows);
  const mvm: Mvm = {
    x: tiles,
    xbar: l.xbar,
    tileRanges: l.inputRange,
    adcGains: l.adcGains,
    probe,
    operand: { ...cells(tiles), inSteps: true, codes: codesInSteps(l.xbar, p.rows) },
    sliceWeights: p.sliceWeights,
    rows: p.rows,
    seed,
    // x is (batch, …, in): its first dim counts the samples
    batch: lead[0] ?? 1,
  };
  // the native kernel, where it applies, takes the gain and sums the row tiles itself
  const blocks = p.outDim / l.scaleBlock;
  const fused = nativeMvm(mvm, { scale: gain.scaled.reshape([1, nR, blocks]), block: l.scaleBlock });
  if (fused) return fused.reshape([...lead, p.outDim]);
  const columnTiles = splitDim(p.outDim, l.xbar.tile.cols, l.xbar.tile.split).map((t) => t.size);
  const y = analogMvm(mvm, columnTiles, gain.apply);
  return sumRowTiles(y).reshape([...lead, p.outDim]);
}

/**
 * The digital sum of the row tiles' partial sums y [R, N, C]. Up to three tiles as a product of
 * ones (`weightedSum`: one read of y, where ONNX Runtime's ReduceSum over a leading axis makes
 * three passes), which adds in the same order; more tiles would round differently, so they keep
 * ReduceSum's numbers.
 */
function sumRowTiles(y: Tensor): Tensor {
  const nR = y.shape[0]!;
  if (nR === 1) return y;
  return nR <= 3 ? weightedSum(y, new Array<number>(nR).fill(1)) : y.sum(0);
}
