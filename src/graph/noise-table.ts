/**
 * Per-run Gaussian noise without a random-number generator in the graph. ONNX Runtime's
 * RandomNormal runs on one thread and takes longer per sample than the matmul it perturbs takes
 * per output; a `noise` leaf is instead fed, at every run, a view of a fixed table of N(0, σ²)
 * samples at an offset drawn uniformly from [0, L): no copy, no extra pass over the outputs.
 *
 * Each window is L-distinct samples of the table's distribution, so every draw has the exact
 * marginal distribution and the samples within one window are independent. Two windows (two
 * products, or two runs) share values only where they overlap, shifted against each other by a
 * uniformly random offset. `noiseSampler: 'direct'` in a hardware spec keeps RandomNormal.
 */
import { Rng } from '../util/math.js';

/** Samples in a table; it is stored twice over (2^25 floats, 128 MB per σ) so windows wrap. */
export const NOISE_TABLE_SAMPLES = 2 ** 24;
const TABLE_SEED = 0x7ab1e;
/** Window starts are multiples of this many samples (see NoiseStream.next). */
const WINDOW_ALIGN = 16;
/**
 * Which windows a seed draws: 1, at any sample; 2, at multiples of 16.
 * Results record it, so that a resume never mixes the two streams (analog-model.ts).
 */
export const NOISE_STREAM = 2;

const tables = new Map<number, Float32Array>();

/**
 * The process's table of N(0, std²) samples [2L], built once per std from a fixed seed, so a
 * graph seed gives the same numbers in every process.
 */
export function noiseTable(std: number): Float32Array {
  let t = tables.get(std);
  if (!t) {
    t = new Float32Array(2 * NOISE_TABLE_SAMPLES);
    const unit = tables.get(1);
    if (unit) for (let i = 0; i < NOISE_TABLE_SAMPLES; i++) t[i] = unit[i]! * std;
    else new Rng(TABLE_SEED).fillNormal(t.subarray(0, NOISE_TABLE_SAMPLES), 0, std);
    t.copyWithin(NOISE_TABLE_SAMPLES, 0, NOISE_TABLE_SAMPLES);
    tables.set(std, t);
  }
  return t;
}

/** The table `view` is a window of, if it is one (a table's samples never change). */
export function tableOf(view: Float32Array): Float32Array | undefined {
  for (const t of tables.values()) if (t.buffer === view.buffer) return t;
  return undefined;
}

/** The stream of window offsets of one noise leaf: a new offset in [0, L) per run. */
export class NoiseStream {
  private readonly rng: Rng;
  constructor(
    readonly seed: number,
    readonly std: number,
    readonly size: number,
  ) {
    this.rng = new Rng(seed);
  }

  /**
   * The next window: `size` consecutive table samples, starting at a multiple of 16 (64 bytes,
   * one cache line or AVX-512 vector from the table's start), which ONNX Runtime's kernels read
   * faster than windows at any float (docs/analog-model.md). 2^20 possible starts are as good as
   * 2^24 for independence.
   */
  next(): Float32Array {
    const start = Math.floor((this.rng.uniform() * NOISE_TABLE_SAMPLES) / WINDOW_ALIGN) * WINDOW_ALIGN;
    return noiseTable(this.std).subarray(start, start + this.size);
  }
}
