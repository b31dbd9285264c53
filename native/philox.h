// Counter-based Gaussian noise: Philox4x32-10 (Salmon et al., SC'11) and a float32 Box–Muller
// transform, the same operations in the same order as src/util/philox.ts, so that a (key,
// counter) gives the same float32 bits in TypeScript and here (docs/analog-model.md, *Noise*).
// GCC/Clang vector extensions of one register's width (GCC splits wider vectors' compares and
// selects into single lanes), with intrinsics only for what GCC does not emit from them: the
// 32×32→64 multiplies and, with AVX2, square roots. Float operations are +, −, ×, ÷ and sqrt
// only, each rounded to float32; build with -ffp-contract=off (no fused multiply-adds).
#pragma once

#include <cstdint>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>
#elif defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

namespace philox {

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

// Blocks per call of `gaussians`: 8 (16 Box–Muller pairs).
constexpr int kBlocks = 8;

typedef uint32_t u32x8 __attribute__((vector_size(32)));

// Philox runs on one register of 64-bit lanes at a time: 8 with AVX-512, 4 with AVX2, else 2.
#if defined(__AVX512F__)
constexpr int kWords = 8;
#elif defined(__AVX2__)
constexpr int kWords = 4;
#else
constexpr int kWords = 2;
#endif
typedef uint64_t u64xQ __attribute__((vector_size(8 * kWords)));
typedef uint32_t u32xQ __attribute__((vector_size(4 * kWords)));

// x's low halves × m, 32×32→64 bits (vpmuludq; GCC emits a 64×64 multiply for x * m)
inline u64xQ mul32(u64xQ x, uint32_t m) {
#if defined(__AVX512F__)
  return reinterpret_cast<u64xQ>(_mm512_mul_epu32(reinterpret_cast<__m512i>(x), _mm512_set1_epi64(m)));
#elif defined(__AVX2__)
  return reinterpret_cast<u64xQ>(_mm256_mul_epu32(reinterpret_cast<__m256i>(x), _mm256_set1_epi64x(m)));
#elif defined(__wasm_simd128__)
  // the low halves side by side, then one extending multiply (i64x2.mul is ~7 instructions in V8)
  const v128_t v = reinterpret_cast<v128_t>(x);
  return reinterpret_cast<u64xQ>(wasm_u64x2_extmul_low_u32x4(wasm_i32x4_shuffle(v, v, 0, 2, 0, 2), wasm_i32x4_splat(m)));
#else
  return (x & 0xffffffffu) * m;
#endif
}

// Philox4x32-10 of kWords counters at once: block b is (x0[b], x1[b], x2[b], x3[b]) under key
// (k0, k1), replaced by its output in the low halves; 32-bit words held in 64-bit lanes, so that
// the 32×32→64 products are lane-wise multiplies. The high halves of x1 and x3 carry the
// products' and of x0 and x2 garbage, which the multiplies ignore and the caller drops.
inline void philox(u64xQ& x0, u64xQ& x1, u64xQ& x2, u64xQ& x3, uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; round++) {
    const u64xQ p0 = mul32(x0, kM0), p1 = mul32(x2, kM1);
    const u64xQ a = (p1 >> 32) ^ x1 ^ k0, c = (p0 >> 32) ^ x3 ^ k1;
    x1 = p1;
    x3 = p0;
    x0 = a;
    x2 = c;
    k0 += kW0;
    k1 += kW1;
  }
}

// The Box–Muller transform runs on vectors of one register (GCC splits wider vectors' compares
// and selects into single lanes): 16 floats with AVX-512, 8 with AVX2, else 4 (NEON, SIMD128).
#if defined(__AVX512F__)
constexpr int kWidth = 16;
#elif defined(__AVX2__)
constexpr int kWidth = 8;
#else
constexpr int kWidth = 4;
#endif
typedef uint32_t u32xW __attribute__((vector_size(4 * kWidth)));
typedef int32_t i32xW __attribute__((vector_size(4 * kWidth)));
typedef float f32xW __attribute__((vector_size(4 * kWidth)));

// correctly rounded square roots lane by lane (GCC leaves an element loop of them scalar with AVX2)
inline f32xW sqrtW(f32xW x) {
#if defined(__AVX512F__)
  return reinterpret_cast<f32xW>(_mm512_sqrt_ps(reinterpret_cast<__m512>(x)));
#elif defined(__AVX2__)
  return reinterpret_cast<f32xW>(_mm256_sqrt_ps(reinterpret_cast<__m256>(x)));
#elif defined(__wasm_simd128__)
  return reinterpret_cast<f32xW>(wasm_f32x4_sqrt(reinterpret_cast<v128_t>(x)));
#else
  f32xW r;
  for (int k = 0; k < kWidth; k++) r[k] = __builtin_sqrtf(x[k]);
  return r;
#endif
}

// a where the mask is set (all ones), else b
inline f32xW select(i32xW mask, f32xW a, f32xW b) {
  return reinterpret_cast<f32xW>((reinterpret_cast<i32xW>(a) & mask) | (reinterpret_cast<i32xW>(b) & ~mask));
}
inline f32xW splatW(float x) { return f32xW{} + x; }

// The Box–Muller radius sqrt(−2·ln u) of u = t·2^−32, t = w + 1 ∈ [1, 2^32] rounded to float32
// (src/util/philox.ts boxMullerRadius): t's exponent and mantissa m from its bits, ln of m ∈
// [√½, √2) as 2·atanh((m−1)/(m+1)) to s⁹.
inline f32xW radius(u32xW w) {
  // t = hi·65536 + (lo + 1): both terms exact, one rounding
  const f32xW t = __builtin_convertvector(reinterpret_cast<i32xW>(w >> 16u), f32xW) * splatW(65536.0f) +
                  __builtin_convertvector(reinterpret_cast<i32xW>((w & 0xffffu) + 1u), f32xW);
  const i32xW bits = reinterpret_cast<i32xW>(t);
  // t = m·2^e, m ∈ [0.5, 1)
  f32xW m = reinterpret_cast<f32xW>((bits & 0x007fffff) | 0x3f000000);
  i32xW e = (bits >> 23) - 126 - 32;
  const i32xW small = m < splatW(static_cast<float>(0.7071067811865476));
  m = select(small, m * splatW(2.0f), m);
  e += small;
  const f32xW one = splatW(1.0f);
  const f32xW s = (m - one) / (m + one);
  const f32xW z = s * s;
  const f32xW series =
      one + z * (splatW(1.0f / 3) + z * (splatW(1.0f / 5) + z * (splatW(1.0f / 7) + z * splatW(1.0f / 9))));
  const f32xW lnU = splatW(2.0f) * s * series +
                    __builtin_convertvector(e, f32xW) * splatW(static_cast<float>(0.6931471805599453));
  return sqrtW(splatW(-2.0f) * lnU);
}

// cos and sin of the angle 2π·w/2^32 (src/util/philox.ts boxMullerAngle): octant from the top 3
// bits, φ ∈ [0, π/4) from the next 24, Taylor series to φ⁹ and φ¹⁰.
inline void angle(u32xW w, f32xW& cosOut, f32xW& sinOut) {
  const i32xW octant = reinterpret_cast<i32xW>(w >> 29u);  // 0..7: signed compares are the same
  const f32xW phi = __builtin_convertvector(reinterpret_cast<i32xW>((w >> 5u) & 0xffffffu), f32xW) *
                    splatW(0x1p-24f) * splatW(static_cast<float>(0.7853981633974483));
  const f32xW z = phi * phi;
  const f32xW one = splatW(1.0f);
  const f32xW sin =
      phi * (one + z * (splatW(-1.0f / 6) +
                        z * (splatW(1.0f / 120) + z * (splatW(-1.0f / 5040) + z * splatW(1.0f / 362880)))));
  const f32xW cos =
      one + z * (splatW(-1.0f / 2) +
                 z * (splatW(1.0f / 24) +
                      z * (splatW(-1.0f / 720) + z * (splatW(1.0f / 40320) + z * splatW(-1.0f / 3628800)))));
  const i32xW swap = ((octant + 1) >> 1 & 1) != 0;
  const f32xW c = select(swap, sin, cos), s = select(swap, cos, sin);
  const i32xW cosNeg = (octant >= 2) & (octant <= 5);
  const i32xW sinNeg = octant >= 4;
  cosOut = select(cosNeg, -c, c);
  sinOut = select(sinNeg, -s, s);
}

// The 4·kBlocks N(0, 1) values of the blocks at counters (c0[b], c1[b], c2, c3), b < kBlocks,
// under key (k0, k1), written to out[4b + lane]: lanes 0 and 1 are r·cos θ and r·sin θ of words
// 0 (radius) and 1 (angle), lanes 2 and 3 the same of words 2 and 3.
inline void gaussians(u32x8 c0, u32x8 c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1, float* out) {
  // radius words (0 of each block, then 2), angle words (1, then 3)
  alignas(64) uint32_t rw[16], aw[16], lo[8], hi[8];
  alignas(64) float zc[16], zs[16];
  std::memcpy(lo, &c0, sizeof lo);
  std::memcpy(hi, &c1, sizeof hi);
  for (int at = 0; at < kBlocks; at += kWords) {
    u32xQ a, b;
    std::memcpy(&a, lo + at, sizeof a);
    std::memcpy(&b, hi + at, sizeof b);
    u64xQ x0 = __builtin_convertvector(a, u64xQ), x1 = __builtin_convertvector(b, u64xQ);
    u64xQ x2 = u64xQ{} + c2, x3 = u64xQ{} + c3;
    philox(x0, x1, x2, x3, k0, k1);
    const u32xQ w0 = __builtin_convertvector(x0, u32xQ), w1 = __builtin_convertvector(x1, u32xQ);
    const u32xQ w2 = __builtin_convertvector(x2, u32xQ), w3 = __builtin_convertvector(x3, u32xQ);
    std::memcpy(rw + at, &w0, sizeof w0), std::memcpy(rw + 8 + at, &w2, sizeof w2);
    std::memcpy(aw + at, &w1, sizeof w1), std::memcpy(aw + 8 + at, &w3, sizeof w3);
  }
  for (int at = 0; at < 16; at += kWidth) {
    u32xW r, a;
    std::memcpy(&r, rw + at, sizeof r);
    std::memcpy(&a, aw + at, sizeof a);
    const f32xW rad = radius(r);
    f32xW c, s;
    angle(a, c, s);
    const f32xW zcv = rad * c, zsv = rad * s;
    std::memcpy(zc + at, &zcv, sizeof zcv);
    std::memcpy(zs + at, &zsv, sizeof zsv);
  }
  // out[4b + lane]: lanes 0..3 from zc[b], zs[b], zc[8 + b], zs[8 + b] (a 4 × 8 transpose)
#if defined(__AVX512F__)
  f32xW c, s;
  std::memcpy(&c, zc, 64), std::memcpy(&s, zs, 64);
  const f32xW first = __builtin_shufflevector(c, s, 0, 16, 8, 24, 1, 17, 9, 25, 2, 18, 10, 26, 3, 19, 11, 27);
  const f32xW second = __builtin_shufflevector(c, s, 4, 20, 12, 28, 5, 21, 13, 29, 6, 22, 14, 30, 7, 23, 15, 31);
  std::memcpy(out, &first, 64), std::memcpy(out + 16, &second, 64);
#else
  typedef float f32x8 __attribute__((vector_size(32)));
  f32x8 a, b, c, d;
  std::memcpy(&a, zc, 32), std::memcpy(&b, zs, 32), std::memcpy(&c, zc + 8, 32), std::memcpy(&d, zs + 8, 32);
  const f32x8 abLo = __builtin_shufflevector(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
  const f32x8 abHi = __builtin_shufflevector(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
  const f32x8 cdLo = __builtin_shufflevector(c, d, 0, 8, 1, 9, 2, 10, 3, 11);
  const f32x8 cdHi = __builtin_shufflevector(c, d, 4, 12, 5, 13, 6, 14, 7, 15);
  const f32x8 o0 = __builtin_shufflevector(abLo, cdLo, 0, 1, 8, 9, 2, 3, 10, 11);
  const f32x8 o1 = __builtin_shufflevector(abLo, cdLo, 4, 5, 12, 13, 6, 7, 14, 15);
  const f32x8 o2 = __builtin_shufflevector(abHi, cdHi, 0, 1, 8, 9, 2, 3, 10, 11);
  const f32x8 o3 = __builtin_shufflevector(abHi, cdHi, 4, 5, 12, 13, 6, 7, 14, 15);
  std::memcpy(out, &o0, 32), std::memcpy(out + 8, &o1, 32), std::memcpy(out + 16, &o2, 32), std::memcpy(out + 24, &o3, 32);
#endif
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
