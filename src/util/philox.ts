/**
 * Counter-based Gaussian noise: Philox4x32-10 (Salmon et al., SC'11) and a Box–Muller transform
 * in float32 that native/philox.h computes with the same operations in the same order, so a
 * (key, counter) gives the same float32 bits in TypeScript and C++ (docs/analog-model.md, *Noise*).
 * Every float32 step is a Math.fround of one +, −, ×, ÷ or sqrt: a double result rounded to
 * float32 is the correctly rounded float32 result for these operations.
 */

/**
 * Which noise a seed draws, recorded with results so that a resume never mixes two: 1 and 2,
 * windows of a fixed table of samples (at any sample; at multiples of 16); 3, this generator
 * keyed by sample.
 */
export const NOISE_STREAM = 3;

const M0 = 0xd2511f53;
const M1 = 0xcd9e8d57;
const W0 = 0x9e3779b9;
const W1 = 0xbb67ae85;

/** The high 32 bits of the 64-bit product of two uint32 (16-bit halves: every partial product is exact). */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff;
  const ah = a >>> 16;
  const bl = b & 0xffff;
  const bh = b >>> 16;
  const lh = al * bh;
  const hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + (lh >>> 16) + (hl >>> 16) + (mid >>> 16)) >>> 0;
}

/** Philox4x32-10 of counter (c0, c1, c2, c3) under key (k0, k1), written into `out` [4] as uint32. */
export function philox4x32(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Uint32Array,
): void {
  let x0 = c0 >>> 0;
  let x1 = c1 >>> 0;
  let x2 = c2 >>> 0;
  let x3 = c3 >>> 0;
  let a = k0 >>> 0;
  let b = k1 >>> 0;
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi(M0, x0);
    const lo0 = Math.imul(M0, x0) >>> 0;
    const hi1 = mulhi(M1, x2);
    const lo1 = Math.imul(M1, x2) >>> 0;
    x0 = (hi1 ^ x1 ^ a) >>> 0;
    x1 = lo1;
    x2 = (hi0 ^ x3 ^ b) >>> 0;
    x3 = lo0;
    a = (a + W0) >>> 0;
    b = (b + W1) >>> 0;
  }
  out[0] = x0;
  out[1] = x1;
  out[2] = x2;
  out[3] = x3;
}

const f = Math.fround;
const LN2 = f(Math.LN2);
const SQRT_HALF = f(Math.SQRT1_2);
const PI_4 = f(Math.PI / 4);
/** 2^−24: a 24-bit integer times this is exact in float32. */
const ULP24 = 2 ** -24;
// Taylor coefficients, as float32
const L3 = f(1 / 3);
const L5 = f(1 / 5);
const L7 = f(1 / 7);
const L9 = f(1 / 9);
const S3 = f(-1 / 6);
const S5 = f(1 / 120);
const S7 = f(-1 / 5040);
const S9 = f(1 / 362880);
const C2 = f(-1 / 2);
const C4 = f(1 / 24);
const C6 = f(-1 / 720);
const C8 = f(1 / 40320);
const C10 = f(-1 / 3628800);

/** 2^−k for k = 0..33. */
const INV_POW2 = Float64Array.from({ length: 34 }, (_, k) => 2 ** -k);

/**
 * The Box–Muller radius sqrt(−2·ln u) of u = t·2^−32, t = w + 1 ∈ [1, 2^32] rounded to float32
 * (so u > 0; radius at most 6.66), from a uint32 w: t's exponent and mantissa m from its bits
 * (an exact frexp), ln of m ∈ [√½, √2) as 2·atanh((m−1)/(m+1)), its series to s⁹ (truncation
 * < 1e-9).
 */
export function boxMullerRadius(w: number): number {
  // hi·65536 + (lo + 1): both terms exact, one rounding; an integer in [1, 2^32]
  const t = f((w >>> 16) * 65536 + ((w & 0xffff) + 1));
  // t = m·2^k, m ∈ [0.5, 1) (division by a power of two: exact)
  const k = t >= 2 ** 32 ? 33 : 32 - Math.clz32(t);
  let m = t * INV_POW2[k]!;
  let e = k - 32;
  if (m < SQRT_HALF) {
    m = m * 2;
    e -= 1;
  }
  const s = f(f(m - 1) / f(m + 1));
  const z = f(s * s);
  const series = f(1 + f(z * f(L3 + f(z * f(L5 + f(z * f(L7 + f(z * L9))))))));
  const lnU = f(f(f(2 * s) * series) + f(e * LN2));
  return f(Math.sqrt(f(-2 * lnU)));
}

/**
 * cos and sin of the angle 2π·w/2^32 of a uint32 w, written into out[0], out[1]: the top 3 bits
 * pick the octant, the next 24 the offset φ ∈ [0, π/4) in it, whose sin and cos are their Taylor
 * series to φ⁹ and φ¹⁰ (truncation < 2e-9); odd octants run backwards from their end, which keeps
 * the angle uniform.
 */
export function boxMullerAngle(w: number, out: Float32Array): void {
  const octant = w >>> 29;
  const phi = f(((w >>> 5) & 0xffffff) * ULP24 * PI_4);
  const z = f(phi * phi);
  const sin = f(phi * f(1 + f(z * f(S3 + f(z * f(S5 + f(z * f(S7 + f(z * S9)))))))));
  const cos = f(1 + f(z * f(C2 + f(z * f(C4 + f(z * f(C6 + f(z * f(C8 + f(z * C10))))))))));
  // octant o covers [o, o + 1)·π/4: even octants at oπ/4 + φ, odd ones at (o + 1)π/4 − φ
  const swap = ((octant + 1) >>> 1) & 1;
  const c = swap ? sin : cos;
  const s = swap ? cos : sin;
  out[0] = octant >= 2 && octant <= 5 ? -c : c;
  out[1] = octant >= 4 ? -s : s;
}

const block = new Uint32Array(4);
const trig = new Float32Array(2);

/**
 * The four N(0, 1) float32 values of one Philox block: lanes 0 and 1 are r·cos θ and r·sin θ of
 * words 0 (radius) and 1 (angle), lanes 2 and 3 the same of words 2 and 3.
 */
export function gaussianBlock(
  c0: number,
  c1: number,
  c2: number,
  c3: number,
  k0: number,
  k1: number,
  out: Float32Array,
  at = 0,
): void {
  philox4x32(c0, c1, c2, c3, k0, k1, block);
  for (let pair = 0; pair < 2; pair++) {
    const r = boxMullerRadius(block[2 * pair]!);
    boxMullerAngle(block[2 * pair + 1]!, trig);
    out[at + 2 * pair] = f(r * trig[0]!);
    out[at + 2 * pair + 1] = f(r * trig[1]!);
  }
}

/**
 * Where a noise leaf's elements sit, for `fillNoise`: viewed as [outer, along, inner, columns],
 * where `along` (the batch axis) holds the batch's samples one after another, `perSample`
 * entries each.
 */
export interface NoiseLayout {
  outer: number;
  along: number;
  perSample: number;
  inner: number;
  columns: number;
}

/** The layout of a noise tensor of `shape` whose axis `axis` (not the last) holds `batch` samples. */
export function noiseLayout(shape: readonly number[], axis: number, batch: number): NoiseLayout {
  const prod = (a: readonly number[]) => a.reduce((x, y) => x * y, 1);
  const along = shape[axis]!;
  return {
    outer: prod(shape.slice(0, axis)),
    along,
    perSample: along / batch,
    inner: prod(shape.slice(axis + 1, -1)),
    columns: shape.at(-1)!,
  };
}

/**
 * N(0, std²) noise for sample-keyed counters: element (o, a, i, c) of `layout` belongs to sample
 * firstSample + ⌊a/perSample⌋ at row q = (o·perSample + a mod perSample)·inner + i within it,
 * and takes lane c mod 4 of the Gaussian block at counter (⌊c/4⌋, q, sample, 0) under key
 * (seed, 0), × std in float32. The value depends on the seed, the sample and the element's place
 * in its sample only.
 */
export function fillNoise(
  out: Float32Array,
  layout: NoiseLayout,
  seed: number,
  std: number,
  firstSample: number,
): void {
  const { outer, along, perSample, inner, columns } = layout;
  const sd = f(std);
  const g = new Float32Array(4);
  let at = 0;
  for (let o = 0; o < outer; o++)
    for (let a = 0; a < along; a++) {
      const sample = firstSample + Math.floor(a / perSample);
      const rowBase = (o * perSample + (a % perSample)) * inner;
      for (let i = 0; i < inner; i++) {
        const q = rowBase + i;
        for (let c = 0; c < columns; c += 4) {
          gaussianBlock(c >>> 2, q, sample, 0, seed, 0, g);
          const n = Math.min(4, columns - c);
          for (let l = 0; l < n; l++) out[at + l] = sd === 1 ? g[l]! : f(g[l]! * sd);
          at += n;
        }
      }
    }
}
