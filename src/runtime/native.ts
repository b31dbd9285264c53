/**
 * Optional native kernels (native/, built by `npm run build:native` into build/): fused loops
 * that ONNX Runtime's stock kernels cannot express in one pass. Without the build, their
 * WebAssembly build (src/runtime/wasm.ts; XBAR_KERNEL=wasm chooses it); with XBAR_NATIVE=0,
 * xbar runs the same computations as ONNX graphs.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { InputError } from '../util/errors.js';
import { wasmKernels } from './wasm.js';

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
  /** Per plane, N(0, 1) samples for the read noise, J·B·R·N·C each (the kernel's own layout). */
  readNoise: Float32Array[] | null;
  /** Per plane, N(0, σ_out²) samples for the output noise, or null. */
  outNoise: Float32Array[] | null;
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

export interface NativeKernels {
  /** → [B, R, N, C] recombined ADC codes (× gain, and summed over R, when asked). */
  crossbarProducts(args: CrossbarProductsArgs): Float32Array;
  /** The constants the kernels were compiled with (src/analog/write-noise.ts's NATIVE_CONSTANTS, as JSON). */
  constants: string;
}

const BUILT = fileURLToPath(new URL('../../../build/xbar_native.node', import.meta.url));
const SOURCE = fileURLToPath(new URL('../../../native/crossbar_products.cc', import.meta.url));
let loaded: NativeKernels | null | undefined;
let warned = false;

/** The build, if there is one and it was built from the source as it is now. */
function load(): NativeKernels | null {
  if (!existsSync(BUILT)) return null;
  const stamp = `${BUILT}.json`;
  const built = existsSync(stamp)
    ? (JSON.parse(readFileSync(stamp, 'utf8')) as { source?: string }).source
    : undefined;
  const now = existsSync(SOURCE) ? createHash('sha256').update(readFileSync(SOURCE)).digest('hex') : built;
  if (built !== now) {
    if (!warned)
      console.error(
        `xbar: ${BUILT} was built from another version of native/crossbar_products.cc; ` +
          'run `npm run build:native` (using ONNX graphs until then)',
      );
    warned = true;
    return null;
  }
  return createRequire(import.meta.url)(BUILT) as NativeKernels;
}

/** The native build, else the WebAssembly one; `wasm` (or XBAR_KERNEL=wasm): the WebAssembly one. */
const pick = (wasm = process.env['XBAR_KERNEL'] === 'wasm') => (wasm ? null : load()) ?? wasmKernels(wasm);

/** The native kernels (or their WebAssembly build), or null when neither loads or XBAR_NATIVE=0. */
export function nativeKernels(): NativeKernels | null {
  if (loaded === undefined) loaded = process.env['XBAR_NATIVE'] === '0' ? null : pick();
  return loaded;
}

/**
 * Turns the native kernels off (graphs built afterwards are ONNX graphs only) or back on, where
 * built (`wasm`: their WebAssembly build); returns whether they were on, to restore. For
 * comparisons in one process.
 */
export function useNativeKernels(on: boolean | 'wasm'): boolean {
  const was = nativeKernels() !== null;
  loaded = on ? pick(on === 'wasm') : null;
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
