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

typedef uint32_t u32x4 __attribute__((vector_size(16)));
typedef uint64_t u64x4 __attribute__((vector_size(32)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));
typedef int32_t i32x8 __attribute__((vector_size(32)));
typedef float f32x8 __attribute__((vector_size(32)));

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

// Philox4x32-10 of four counters at once: block b is (x0[b], x1[b], x2[b], x3[b]) under key
// (k0, k1), replaced by its output.
inline void philox4(u32x4& x0, u32x4& x1, u32x4& x2, u32x4& x3, uint32_t k0, uint32_t k1) {
  // lane by lane: compilers vectorise the 32×32→64 products as widening multiplies
  uint32_t a[4], b[4], c[4], d[4];
  std::memcpy(a, &x0, sizeof a), std::memcpy(b, &x1, sizeof b), std::memcpy(c, &x2, sizeof c), std::memcpy(d, &x3, sizeof d);
  for (int round = 0; round < 10; round++) {
    for (int e = 0; e < 4; e++) {
      const uint64_t p0 = static_cast<uint64_t>(a[e]) * kM0, p1 = static_cast<uint64_t>(c[e]) * kM1;
      const uint32_t na = static_cast<uint32_t>(p1 >> 32) ^ b[e] ^ k0, nc = static_cast<uint32_t>(p0 >> 32) ^ d[e] ^ k1;
      b[e] = static_cast<uint32_t>(p1);
      d[e] = static_cast<uint32_t>(p0);
      a[e] = na;
      c[e] = nc;
    }
    k0 += kW0;
    k1 += kW1;
  }
  std::memcpy(&x0, a, sizeof a), std::memcpy(&x1, b, sizeof b), std::memcpy(&x2, c, sizeof c), std::memcpy(&x3, d, sizeof d);
}

// a where the mask is set (all ones), else b
inline f32x8 select(i32x8 mask, f32x8 a, f32x8 b) {
  return reinterpret_cast<f32x8>((reinterpret_cast<i32x8>(a) & mask) | (reinterpret_cast<i32x8>(b) & ~mask));
}
inline f32x8 splat8(float x) { return f32x8{x, x, x, x, x, x, x, x}; }

// The Box–Muller radius sqrt(−2·ln u) of u = t·2^−32, t = w + 1 ∈ [1, 2^32] rounded to float32
// (src/util/philox.ts boxMullerRadius): t's exponent and mantissa m from its bits, ln of m ∈
// [√½, √2) as 2·atanh((m−1)/(m+1)) to s⁹.
inline f32x8 radius(u32x8 w) {
  // t = hi·65536 + (lo + 1): both terms exact, one rounding
  const f32x8 t = __builtin_convertvector(reinterpret_cast<i32x8>(w >> 16u), f32x8) * splat8(65536.0f) +
                  __builtin_convertvector(reinterpret_cast<i32x8>((w & 0xffffu) + 1u), f32x8);
  const i32x8 bits = reinterpret_cast<i32x8>(t);
  // t = m·2^e, m ∈ [0.5, 1)
  f32x8 m = reinterpret_cast<f32x8>((bits & 0x007fffff) | 0x3f000000);
  i32x8 e = (bits >> 23) - 126 - 32;
  const i32x8 small = m < splat8(static_cast<float>(0.7071067811865476));
  m = select(small, m * splat8(2.0f), m);
  e += small;
  const f32x8 one = splat8(1.0f);
  const f32x8 s = (m - one) / (m + one);
  const f32x8 z = s * s;
  const f32x8 series =
      one + z * (splat8(1.0f / 3) + z * (splat8(1.0f / 5) + z * (splat8(1.0f / 7) + z * splat8(1.0f / 9))));
  const f32x8 lnU = splat8(2.0f) * s * series +
                    __builtin_convertvector(e, f32x8) * splat8(static_cast<float>(0.6931471805599453));
  const f32x8 x = splat8(-2.0f) * lnU;
  f32x8 r;
  for (int k = 0; k < 8; k++) r[k] = __builtin_sqrtf(x[k]);
  return r;
}

// cos and sin of the angle 2π·w/2^32 (src/util/philox.ts boxMullerAngle): octant from the top 3
// bits, φ ∈ [0, π/4) from the next 24, Taylor series to φ⁹ and φ¹⁰.
inline void angle(u32x8 w, f32x8& cosOut, f32x8& sinOut) {
  const u32x8 octant = w >> 29u;
  const f32x8 phi =
      __builtin_convertvector(reinterpret_cast<i32x8>((w >> 5u) & 0xffffffu), f32x8) * splat8(0x1p-24f) *
      splat8(static_cast<float>(0.7853981633974483));
  const f32x8 z = phi * phi;
  const f32x8 one = splat8(1.0f);
  const f32x8 sin =
      phi * (one + z * (splat8(-1.0f / 6) + z * (splat8(1.0f / 120) + z * (splat8(-1.0f / 5040) +
                                                                            z * splat8(1.0f / 362880)))));
  const f32x8 cos =
      one + z * (splat8(-1.0f / 2) +
                 z * (splat8(1.0f / 24) +
                      z * (splat8(-1.0f / 720) + z * (splat8(1.0f / 40320) + z * splat8(-1.0f / 3628800)))));
  const i32x8 swap = reinterpret_cast<i32x8>(((octant + 1u) >> 1u) & 1u) != 0;
  const f32x8 c = select(swap, sin, cos), s = select(swap, cos, sin);
  const i32x8 cosNeg = (octant >= 2u) & (octant <= 5u);
  const i32x8 sinNeg = reinterpret_cast<i32x8>(octant >= 4u);
  cosOut = select(cosNeg, -c, c);
  sinOut = select(sinNeg, -s, s);
}

// The 16 N(0, 1) values of the blocks at counters (c0 + b, c1, c2, c3), b = 0..3, under key
// (k0, k1), written to out[4b + lane]: lanes 0 and 1 are r·cos θ and r·sin θ of words 0
// (radius) and 1 (angle), lanes 2 and 3 the same of words 2 and 3.
inline void gaussians16(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1,
                        float* out) {
  u32x4 x0 = u32x4{c0, c0 + 1, c0 + 2, c0 + 3}, x1 = u32x4{c1, c1, c1, c1}, x2 = u32x4{c2, c2, c2, c2},
        x3 = u32x4{c3, c3, c3, c3};
  philox4(x0, x1, x2, x3, k0, k1);
  // pair 2b + h of block b: radius word 2h, angle word 2h + 1
  const u32x8 rw = __builtin_shufflevector(x0, x2, 0, 4, 1, 5, 2, 6, 3, 7);
  const u32x8 aw = __builtin_shufflevector(x1, x3, 0, 4, 1, 5, 2, 6, 3, 7);
  const f32x8 r = radius(rw);
  f32x8 c, s;
  angle(aw, c, s);
  const f32x8 zc = r * c, zs = r * s;
  typedef float f32x16 __attribute__((vector_size(64)));
  const f32x16 z = __builtin_shufflevector(zc, zs, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
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
  float g[16];
  for (int64_t c = 0; c < l.columns; c += 16) {
    gaussians16(static_cast<uint32_t>(c >> 2), q, sample, 0, seed, 0, g);
    const int64_t n = l.columns - c < 16 ? l.columns - c : 16;
    if (std == 1.0f) {
      std::memcpy(out + c, g, n * sizeof(float));
    } else {
      for (int64_t e = 0; e < n; e++) out[c + e] = g[e] * std;
    }
  }
}

}  // namespace philox
