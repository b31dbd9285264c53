/**
 * The native kernels (native/, prebuilt per CPU target under prebuilds/ by `npm run
 * build:native`): fused loops that ONNX Runtime's stock kernels cannot express in one pass.
 * Where none runs (another platform, a CPU without the target's features), their WebAssembly
 * build (src/runtime/wasm.ts; XBAR_KERNEL=wasm chooses it); with XBAR_NATIVE=0, xbar runs the
 * same computations as ONNX graphs.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { arch, availableParallelism, platform } from 'node:os';
import { fileURLToPath } from 'node:url';
import { InputError } from '../util/errors.js';
import { fillNoise, type NoiseLayout } from '../util/philox.js';
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
  /**
   * Per row tile and column [R, C], what each value before the ADC is multiplied by just before
   * the conversion (a calibrated ADC range: the full scale over the column's range); absent: 1.
   */
  adcGain?: Float32Array;
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

/** A CPU target the native kernel is prebuilt for (scripts/build-native.mjs). */
export type NativeTarget = 'x86-64-v4' | 'x86-64-v3' | 'arm64';

/** What runs the crossbar products: a native kernel (its target and file), or the ONNX graphs and why. */
export type KernelInfo =
  | { kind: 'native'; target: NativeTarget; file: string }
  | { kind: 'wasm'; file: string }
  | { kind: 'onnx'; reason: string };

/**
 * The CPU features (Linux /proc/cpuinfo flags) each target's code uses, per <platform>-<arch>,
 * best first: x86-64-v4 is AVX-512 (F, BW, CD, DQ, VL) on x86-64-v3 (AVX2, FMA, BMI, F16C,
 * LZCNT, MOVBE); every arm64 CPU has NEON.
 */
const V3 = ['avx', 'avx2', 'bmi1', 'bmi2', 'f16c', 'fma', 'abm', 'movbe', 'xsave'];
const TARGETS: Record<string, { target: NativeTarget; needs: string[] }[]> = {
  'linux-x64': [
    { target: 'x86-64-v4', needs: [...V3, 'avx512f', 'avx512bw', 'avx512cd', 'avx512dq', 'avx512vl'] },
    { target: 'x86-64-v3', needs: V3 },
  ],
  'linux-arm64': [{ target: 'arm64', needs: ['asimd'] }],
};

const ROOT = new URL('../../../', import.meta.url);
/** The kernel's sources, hashed together in this order (scripts/build-native.mjs). */
const SOURCES = ['crossbar_products.cc', 'philox.h'].map((f) => fileURLToPath(new URL(`native/${f}`, ROOT)));
/** The prebuilds' record: the SHA-256 of the source and of each binary (scripts/build-native.mjs). */
const CHECKSUMS = fileURLToPath(new URL('prebuilds/checksums.json', ROOT));

interface Checksums {
  source: string;
  files: Record<string, { target?: NativeTarget; sha256: string }>;
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

/** The CPU's feature flags (Linux: /proc/cpuinfo's flags, or Features on arm64); empty where unknown. */
function cpuFlags(): Set<string> {
  try {
    const m = /^(?:flags|Features)\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    return new Set(m ? m[1]!.trim().split(/\s+/) : []);
  } catch {
    return new Set();
  }
}

/** The native targets this machine can run, best first. */
export function nativeTargets(): NativeTarget[] {
  const flags = cpuFlags();
  return (TARGETS[`${platform()}-${arch()}`] ?? [])
    .filter((t) => t.needs.every((f) => flags.has(f)))
    .map((t) => t.target);
}

/** $XBAR_KERNEL: the native target asked for, checked against this platform's and this CPU's. */
function forcedTarget(): NativeTarget | undefined {
  const v = process.env['XBAR_KERNEL'];
  if (v === undefined || v === '') return undefined;
  const known = TARGETS[`${platform()}-${arch()}`] ?? [];
  const t = known.find((k) => k.target === v);
  if (!t)
    throw new InputError(
      known.length > 0
        ? `XBAR_KERNEL=${v}: use one of ${known.map((k) => k.target).join(', ')} (the native kernels for ${platform()}-${arch()}), wasm, or XBAR_NATIVE=0 for the ONNX graphs`
        : `XBAR_KERNEL=${v}: no native kernel is prebuilt for ${platform()}-${arch()}; use wasm, or unset it`,
    );
  const lacking = t.needs.filter((f) => !cpuFlags().has(f));
  if (lacking.length > 0)
    throw new InputError(
      `XBAR_KERNEL=${v}: this CPU lacks ${lacking.join(', ')}; it runs ${nativeTargets().join(', ') || 'no native kernel'}`,
    );
  return t.target;
}

interface Loaded {
  kernels: NativeKernels | null;
  info: KernelInfo;
  /** A fault the user should hear of (a stale or damaged prebuild), not a machine without one. */
  fault?: boolean;
  /** Turned off (XBAR_NATIVE=0, `useNativeKernels(false)`): the ONNX graphs are asked for. */
  off?: boolean;
}

/** The best prebuilt kernel this CPU runs (or $XBAR_KERNEL's), checked against its checksums. */
function loadNative(): Loaded {
  const onnx = (reason: string, fault = false): Loaded => ({
    kernels: null,
    info: { kind: 'onnx', reason },
    fault,
  });
  const forced = forcedTarget();
  const target = forced ?? nativeTargets()[0];
  if (!target) return onnx(`no native kernel for this CPU (${platform()}-${arch()})`);
  if (!existsSync(CHECKSUMS)) return onnx(`${CHECKSUMS} is missing`);
  const sums = JSON.parse(readFileSync(CHECKSUMS, 'utf8')) as Checksums;
  const entry = Object.entries(sums.files).find(
    ([f, e]) => e.target === target && f.startsWith(`${platform()}-${arch()}/`),
  );
  if (!entry) return onnx(`${CHECKSUMS} lists no ${target} kernel for ${platform()}-${arch()}`);
  const file = fileURLToPath(new URL(`prebuilds/${entry[0]}`, ROOT));
  // a prebuild from another version of the source would compute something else
  if (SOURCES.every((f) => existsSync(f)) && sourceHash(SOURCES.map((f) => readFileSync(f))) !== sums.source)
    return onnx(
      `the prebuilt kernels were built from another version of native/crossbar_products.cc or native/philox.h; run \`npm run build:native\``,
      true,
    );
  if (!existsSync(file) || sha256(file) !== entry[1].sha256)
    return onnx(
      `${file} is missing or not the file prebuilds/checksums.json lists (its SHA-256 differs)`,
      true,
    );
  try {
    return {
      kernels: createRequire(import.meta.url)(file) as NativeKernels,
      info: { kind: 'native', target, file },
    };
  } catch (e) {
    return onnx(`${file} does not load here: ${(e as Error).message.split('\n')[0]}`, true);
  }
}

let loaded: Loaded | undefined;
let warned = false;
let warnedWasm = false;

/** The WebAssembly kernel, else the ONNX graphs; `forced` (XBAR_KERNEL=wasm): a refused binary is an error. */
function loadWasm(forced: boolean): Loaded {
  const w = wasmKernels();
  if ('kernels' in w) return { kernels: w.kernels, info: { kind: 'wasm', file: w.file } };
  if (forced) throw new InputError(`XBAR_KERNEL=wasm: ${w.refused}`);
  return { kernels: null, info: { kind: 'onnx', reason: w.refused }, fault: true };
}

/**
 * The kernel for crossbar products: native (the best prebuild this CPU runs), else the
 * WebAssembly kernel, else the ONNX graphs. XBAR_KERNEL=wasm: the WebAssembly kernel;
 * XBAR_NATIVE=0: the ONNX graphs.
 */
function load(): Loaded {
  if (process.env['XBAR_NATIVE'] === '0')
    return { kernels: null, info: { kind: 'onnx', reason: 'XBAR_NATIVE=0' }, off: true };
  const wasm = process.env['XBAR_KERNEL'] === 'wasm';
  const native = wasm ? null : loadNative();
  if (native?.fault && !warned && native.info.kind === 'onnx') {
    console.error(`xbar: ${native.info.reason} (using the WebAssembly kernel or ONNX graphs until then)`);
    warned = true;
  }
  if (native?.kernels) return native;
  const fallback = loadWasm(wasm);
  if (fallback.kernels) return fallback;
  // the ONNX graphs: why neither kernel runs
  const reason = (l: Loaded) => (l.info.kind === 'onnx' ? l.info.reason : '');
  if (!warnedWasm)
    console.error(
      `xbar: ${reason(fallback)} (until then, bit-serial crossbar products run only as ONNX graphs, with XBAR_NATIVE=0)`,
    );
  warnedWasm = true;
  return native
    ? { ...native, info: { kind: 'onnx', reason: `${reason(native)}; ${reason(fallback)}` } }
    : fallback;
}

const current = (): Loaded => (loaded ??= load());

/** The native kernels, or null when none runs here or XBAR_NATIVE=0. */
export function nativeKernels(): NativeKernels | null {
  return current().kernels;
}

/** Whether the kernels are turned off (XBAR_NATIVE=0, `useNativeKernels(false)`) rather than missing. */
export const nativeKernelsOff = (): boolean => current().off === true;

/** Which kernel runs the crossbar products, and from which file (or why the ONNX graphs do). */
export function kernelInfo(): KernelInfo {
  return current().info;
}

/**
 * Turns the kernels off (graphs built afterwards are ONNX graphs only) or back on as xbar
 * chooses them (the native kernel this CPU runs, else the WebAssembly one; $XBAR_KERNEL as it
 * is now); returns whether they were on, to restore. For comparisons of kernels in one process.
 */
export function useNativeKernels(on: boolean): boolean {
  const was = nativeKernels() !== null;
  loaded = !on ? { kernels: null, info: { kind: 'onnx', reason: 'turned off' }, off: true } : load();
  return was;
}

let noise: NativeKernels | null | undefined;

/** The kernel that fills noise leaves: the one in use, else (XBAR_NATIVE=0 too) the one that would be. */
function noiseKernels(): NativeKernels | null {
  if (noise === undefined)
    noise =
      nativeKernels() ??
      (process.env['XBAR_KERNEL'] === 'wasm' ? null : loadNative().kernels) ??
      loadWasm(false).kernels;
  return noise;
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
  // a kernel's fill even with XBAR_NATIVE=0, which sends the products to the ONNX graphs: its
  // bits are TypeScript's
  const kernels = noiseKernels();
  if (kernels) kernels.fillNoise({ out, ...layout, seed, std, firstSample, threads: nativeThreads() });
  else fillNoise(out, layout, seed, std, firstSample);
}
