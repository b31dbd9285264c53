// Counter-based Gaussian noise: Philox4x32-10 (Salmon et al., SC'11) and a float32 Box–Muller
// transform, the same operations in the same order as src/util/philox.ts, so that a (key,
// counter) gives the same float32 bits in TypeScript and here (docs/analog-model.md, *Noise*).
// Plain C++ with GCC/Clang vector extensions, no intrinsics: the native and the WebAssembly
// builds compile it as it is. Float operations are +, −, ×, ÷ and sqrt only, each rounded to
// float32; build with -ffp-contract=off (no fused multiply-adds).
#pragma once

#include <cstdint>
#include <cstring>

namespace philox {

typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef float f32x16 __attribute__((vector_size(64)));

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

// Blocks per call of `gaussians`: 8 (16 Box–Muller pairs: one 16-lane vector).
constexpr int kBlocks = 8;

typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef uint64_t u64x8 __attribute__((vector_size(64)));

// Philox4x32-10 of kBlocks counters at once: block b is (x0[b], x1[b], x2[b], x3[b]) under key
// (k0, k1), replaced by its output; 32-bit words held in 64-bit lanes, so that the 32×32→64
// products are lane-wise multiplies.
inline void philox(u64x8& x0, u64x8& x1, u64x8& x2, u64x8& x3, uint32_t k0, uint32_t k1) {
  const u64x8 low = u64x8{} + 0xffffffffu;
  for (int round = 0; round < 10; round++) {
    const u64x8 p0 = x0 * kM0, p1 = x2 * kM1;
    const u64x8 a = (p1 >> 32) ^ x1 ^ k0, c = (p0 >> 32) ^ x3 ^ k1;
    x1 = p1 & low;
    x3 = p0 & low;
    x0 = a;
    x2 = c;
    k0 += kW0;
    k1 += kW1;
  }
}

// a where the mask is set (all ones), else b
inline f32x16 select(i32x16 mask, f32x16 a, f32x16 b) {
  return reinterpret_cast<f32x16>((reinterpret_cast<i32x16>(a) & mask) | (reinterpret_cast<i32x16>(b) & ~mask));
}
inline f32x16 splat16(float x) { return f32x16{} + x; }

// The Box–Muller radius sqrt(−2·ln u) of u = t·2^−32, t = w + 1 ∈ [1, 2^32] rounded to float32
// (src/util/philox.ts boxMullerRadius): t's exponent and mantissa m from its bits, ln of m ∈
// [√½, √2) as 2·atanh((m−1)/(m+1)) to s⁹.
inline f32x16 radius(u32x16 w) {
  // t = hi·65536 + (lo + 1): both terms exact, one rounding
  const f32x16 t = __builtin_convertvector(reinterpret_cast<i32x16>(w >> 16u), f32x16) * splat16(65536.0f) +
                   __builtin_convertvector(reinterpret_cast<i32x16>((w & 0xffffu) + 1u), f32x16);
  const i32x16 bits = reinterpret_cast<i32x16>(t);
  // t = m·2^e, m ∈ [0.5, 1)
  f32x16 m = reinterpret_cast<f32x16>((bits & 0x007fffff) | 0x3f000000);
  i32x16 e = (bits >> 23) - 126 - 32;
  const i32x16 small = m < splat16(static_cast<float>(0.7071067811865476));
  m = select(small, m * splat16(2.0f), m);
  e += small;
  const f32x16 one = splat16(1.0f);
  const f32x16 s = (m - one) / (m + one);
  const f32x16 z = s * s;
  const f32x16 series =
      one + z * (splat16(1.0f / 3) + z * (splat16(1.0f / 5) + z * (splat16(1.0f / 7) + z * splat16(1.0f / 9))));
  const f32x16 lnU = splat16(2.0f) * s * series +
                     __builtin_convertvector(e, f32x16) * splat16(static_cast<float>(0.6931471805599453));
  const f32x16 x = splat16(-2.0f) * lnU;
  f32x16 r;
  for (int k = 0; k < 16; k++) r[k] = __builtin_sqrtf(x[k]);
  return r;
}

// cos and sin of the angle 2π·w/2^32 (src/util/philox.ts boxMullerAngle): octant from the top 3
// bits, φ ∈ [0, π/4) from the next 24, Taylor series to φ⁹ and φ¹⁰.
inline void angle(u32x16 w, f32x16& cosOut, f32x16& sinOut) {
  const u32x16 octant = w >> 29u;
  const f32x16 phi = __builtin_convertvector(reinterpret_cast<i32x16>((w >> 5u) & 0xffffffu), f32x16) *
                     splat16(0x1p-24f) * splat16(static_cast<float>(0.7853981633974483));
  const f32x16 z = phi * phi;
  const f32x16 one = splat16(1.0f);
  const f32x16 sin =
      phi * (one + z * (splat16(-1.0f / 6) +
                        z * (splat16(1.0f / 120) + z * (splat16(-1.0f / 5040) + z * splat16(1.0f / 362880)))));
  const f32x16 cos =
      one + z * (splat16(-1.0f / 2) +
                 z * (splat16(1.0f / 24) +
                      z * (splat16(-1.0f / 720) + z * (splat16(1.0f / 40320) + z * splat16(-1.0f / 3628800)))));
  const i32x16 swap = reinterpret_cast<i32x16>(((octant + 1u) >> 1u) & 1u) != 0;
  const f32x16 c = select(swap, sin, cos), s = select(swap, cos, sin);
  const i32x16 cosNeg = (octant >= 2u) & (octant <= 5u);
  const i32x16 sinNeg = reinterpret_cast<i32x16>(octant >= 4u);
  cosOut = select(cosNeg, -c, c);
  sinOut = select(sinNeg, -s, s);
}

// The 4·kBlocks N(0, 1) values of the blocks at counters (c0[b], c1[b], c2, c3), b < kBlocks,
// under key (k0, k1), written to out[4b + lane]: lanes 0 and 1 are r·cos θ and r·sin θ of words
// 0 (radius) and 1 (angle), lanes 2 and 3 the same of words 2 and 3.
inline void gaussians(u32x8 c0, u32x8 c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, float* out) {
  u64x8 x0 = __builtin_convertvector(c0, u64x8), x1 = __builtin_convertvector(c1, u64x8);
  u64x8 x2 = u64x8{} + c2, x3 = u64x8{} + c3;
  philox(x0, x1, x2, x3, k0, k1);
  // pair 2b + h of block b: radius word 2h, angle word 2h + 1
  const u32x8 w0 = __builtin_convertvector(x0, u32x8), w1 = __builtin_convertvector(x1, u32x8);
  const u32x8 w2 = __builtin_convertvector(x2, u32x8), w3 = __builtin_convertvector(x3, u32x8);
  const u32x16 rw = __builtin_shufflevector(w0, w2, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  const u32x16 aw = __builtin_shufflevector(w1, w3, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
  const f32x16 r = radius(rw);
  f32x16 c, s;
  angle(aw, c, s);
  const f32x16 zc = r * c, zs = r * s;
  typedef float f32x32 __attribute__((vector_size(128)));
  const f32x32 z = __builtin_shufflevector(zc, zs, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23, 8, 24,
                                           9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  std::memcpy(out, &z, sizeof z);
}

// Where a noise tensor's elements sit (src/util/philox.ts NoiseLayout): [outer, along, inner,
// columns], `along` holding the batch's samples one after another, perSample entries each.
struct Layout {
  int64_t outer, along, perSample, inner, columns;
};

// Row (o, a, i) of `layout` (its `columns` values, at out) as src/util/philox.ts fillNoise: lane
// c mod 4 of the block at counter (⌊c/4⌋, q, sample, 0) under key (seed, 0), × std in float32.
inline void fillRow(const Layout& l, int64_t o, int64_t a, int64_t i, uint32_t seed, float std,
                    int64_t firstSample, float* out) {
  const uint32_t sample = static_cast<uint32_t>(firstSample + a / l.perSample);
  const uint32_t q = static_cast<uint32_t>((o * l.perSample + a % l.perSample) * l.inner + i);
  constexpr int kValues = 4 * kBlocks;
  const u32x8 lanes = {0, 1, 2, 3, 4, 5, 6, 7};
  float g[kValues];
  for (int64_t c = 0; c < l.columns; c += kValues) {
    gaussians(static_cast<uint32_t>(c >> 2) + lanes, u32x8{} + q, sample, 0, seed, 0, g);
    const int64_t n = l.columns - c < kValues ? l.columns - c : kValues;
    if (std == 1.0f) {
      std::memcpy(out + c, g, n * sizeof(float));
    } else {
      for (int64_t e = 0; e < n; e++) out[c + e] = g[e] * std;
    }
  }
}

}  // namespace philox
