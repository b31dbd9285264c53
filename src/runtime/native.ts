/**
 * Optional native kernels (native/, built by `npm run build:native` into build/): fused loops
 * that ONNX Runtime's stock kernels cannot express in one pass. Without the build, or with
 * XBAR_NATIVE=0, xbar runs the same computations as ONNX graphs.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { InputError } from '../util/errors.js';
import { fillNoise, type NoiseLayout } from '../util/philox.js';

/** What every call of the fused bit-serial × bit-sliced crossbar product takes (native/crossbar_products.cc). */
interface ProductsArgs {
  /** Signed integer DAC codes [B, R, N, rows], or null when `inputs` are given. */
  codes: Float32Array | null;
  /**
   * Instead of codes: the DAC's inputs [B, R, N, rows], quantised here with a dynamic range
   * (max |x| per vector) to ±`dacLevels`, as the graph's DAC does.
   */
  inputs?: Float32Array;
  dacLevels?: number;
  /** Magnitude bit planes of the bit-serial inputs, 1..31. */
  planes: number;
  /** × `weightScale` the weights are in ADC steps per plane unit. */
  weightScale: number;
  /** × `squareScale` the squares are (σ_R·scale)². */
  squareScale: number;
  /**
   * The key of each plane's noise (util/philox.ts), or null: no read or output noise. The noise
   * of output (plane, slice j, b, r, n, c) is the element (j, b, r, n, c) of a [J, B, R, N, C]
   * noise leaf of that seed whose batch axis is B (`samplesAlongB`) or N and holds `samples`
   * samples from `firstSample` on: the graph's noise for the same output.
   */
  noiseSeeds?: Uint32Array | null;
  /** Default 1. */
  samples?: number;
  samplesAlongB?: boolean;
  /** Default 0. */
  firstSample?: number;
  /**
   * The output noise's σ in ADC steps (0: none): with squares, read and output noise are one
   * draw, sqrt(v + σ_out²)·ξ (v: the read noise's variance); without, σ_out·ξ.
   */
  outSigma?: number;
  /** Recombination weight of each (plane, slice), [planes, J]. */
  coef: Float32Array;
  /** ADC levels each side of zero (0: ideal ADC). */
  levels: number;
  B: number;
  Bw: number;
  R: number;
  N: number;
  rows: number;
  C: number;
  J: number;
  threads: number;
  /**
   * The digital gain per (batch, row tile, vector, block of `gainBlock` columns),
   * [B, R, N, ⌈C/gainBlock⌉], applied to the codes; absent: the codes as they are.
   */
  gain?: Float32Array;
  /** With `inputs`, instead of `gain`: its per-column part [gainBatches, R, ⌈C/gainBlock⌉], × each vector's DAC range here. */
  gainScale?: Float32Array;
  /** Batches of `gainScale`: 1 (shared) or B (default 1). */
  gainBatches?: number;
  gainBlock?: number;
  /** Sum over row tiles: the result is [B, N, C] (Σ gain × codes), else [B, R, N, C]. */
  sumTiles?: boolean;
  /** Where to write the result (e.g. the buffer of an earlier run); else a new one. */
  out?: Float32Array;
}

/** Cells programmed once (static layers). */
export interface ProgrammedCellsArgs {
  /** Weights [J, Bw, R, rows, C] (Bw = 1 or B). */
  weights: Float32Array;
  /** Squared conductances, same layout, or null (no read noise). */
  squares: Float32Array | null;
  /**
   * An object kept with the weights array, where the kernel leaves the levelled form it found
   * (`handle`) and reads it at the next call with the same cells. The weights must not change
   * in place while it is kept.
   */
  levelledCache?: { handle?: unknown };
}

/**
 * An operand written into the crossbars per input (K, V): its signed unit values [Bw, R, rows, C]
 * and how its cells are written (src/analog/dynamic.ts); the kernel writes each tile's cells as
 * it copies the tile.
 */
export interface WrittenCellsArgs {
  unit: Float32Array;
  /** Programming noise: its code in WRITE_KINDS (src/analog/write-noise.ts). */
  writeKind: number;
  /** N(0, 1) samples for the G+ and G− devices, [J, Bw, R, rows, C] each (as the graph reads them); null for kind 0. */
  writeNoise: [Float32Array, Float32Array] | null;
  /** relative: σ; writeSqrt: γσ; additive: σ·G_MAX; pcm: G_MAX/G_ref·scale. */
  writeNoiseScale: number;
  /** 2^weightBits − 1 for bit-sliced cells, 0 for analog cells. */
  cellLevels: number;
  /** 2^bitsPerCell. */
  cellBase: number;
  gMin: number;
  gMax: number;
  /** G_MAX − G_MIN, and its square, as float32 (the graph's constants). */
  dG: number;
  dGSquared: number;
  /** Whether the products read squares (read noise). */
  writeSquares: boolean;
}

export type CrossbarProductsArgs = ProductsArgs & (ProgrammedCellsArgs | WrittenCellsArgs);

/** What `fillNoise` takes: util/philox.ts fillNoise's arguments, and threads. */
export interface FillNoiseArgs extends NoiseLayout {
  out: Float32Array;
  seed: number;
  std: number;
  firstSample: number;
  threads: number;
}

export interface NativeKernels {
  /** → [B, R, N, C] recombined ADC codes (× gain, and summed over R, when asked). */
  crossbarProducts(args: CrossbarProductsArgs): Float32Array;
  /** util/philox.ts fillNoise on `threads` threads, vectorised (native/philox.h). */
  fillNoise(args: FillNoiseArgs): void;
  /** The constants the kernels were compiled with (src/analog/write-noise.ts's NATIVE_CONSTANTS, as JSON). */
  constants: string;
}

const BUILT = fileURLToPath(new URL('../../../build/xbar_native.node', import.meta.url));
const SOURCES = ['crossbar_products.cc', 'philox.h'].map((f) =>
  fileURLToPath(new URL(`../../../native/${f}`, import.meta.url)),
);
/** The build (null: none usable), and the kernels in use (null: off). */
let build: NativeKernels | null | undefined;
let loaded: NativeKernels | null | undefined;
let warned = false;

/** The build, if there is one and it was built from the source as it is now (loaded once). */
function load(): NativeKernels | null {
  if (build === undefined) build = loadBuild();
  return build;
}

function loadBuild(): NativeKernels | null {
  if (!existsSync(BUILT)) return null;
  const stamp = `${BUILT}.json`;
  const built = existsSync(stamp)
    ? (JSON.parse(readFileSync(stamp, 'utf8')) as { source?: string }).source
    : undefined;
  const now = SOURCES.every((f) => existsSync(f)) ? sourceHash(SOURCES.map((f) => readFileSync(f))) : built;
  if (built !== now) {
    if (!warned)
      console.error(
        `xbar: ${BUILT} was built from another version of native/; ` +
          'run `npm run build:native` (using ONNX graphs until then)',
      );
    warned = true;
    return null;
  }
  return createRequire(import.meta.url)(BUILT) as NativeKernels;
}

/** The native kernels, or null when they are not built or XBAR_NATIVE=0. */
export function nativeKernels(): NativeKernels | null {
  if (loaded === undefined) loaded = process.env['XBAR_NATIVE'] === '0' ? null : load();
  return loaded;
}

/**
 * Turns the native kernels off (graphs built afterwards are ONNX graphs only) or back on, where
 * built; returns whether they were on, to restore. For comparisons of the two in one process.
 */
export function useNativeKernels(on: boolean): boolean {
  const was = nativeKernels() !== null;
  loaded = on ? load() : null;
  return was;
}

/** $XBAR_THREADS when set (a whole number ≥ 1), else undefined. */
export function envThreads(): number | undefined {
  const v = process.env['XBAR_THREADS'];
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InputError(`XBAR_THREADS=${v}: use a whole number ≥ 1`);
  return n;
}

/** Threads the native kernels use: $XBAR_THREADS, else every core. */
export const nativeThreads = (): number => envThreads() ?? availableParallelism();

/** The hash of the kernel's sources (scripts/build-native.mjs records it with a build). */
function sourceHash(files: readonly Buffer[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(f);
  return h.digest('hex');
}

/**
 * Fills `out` with the sample-keyed noise of a noise leaf (util/philox.ts fillNoise): in the
 * native build where there is one, on every thread; else in TypeScript (the same bits).
 */
export function drawNoise(
  out: Float32Array,
  layout: NoiseLayout,
  seed: number,
  std: number,
  firstSample: number,
): void {
  // the build's fill even with XBAR_NATIVE=0, which sends the products to the ONNX graphs: its
  // bits are TypeScript's
  const kernels = load();
  if (kernels) kernels.fillNoise({ out, ...layout, seed, std, firstSample, threads: nativeThreads() });
  else fillNoise(out, layout, seed, std, firstSample);
}
