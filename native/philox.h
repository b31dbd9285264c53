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

// Box–Muller on G registers at once, each step of the G registers before the next: independent
// dependency chains side by side, which the CPU overlaps (each step waits on the one before).
#define PHILOX_EACH(...) \
  for (int g = 0; g < G; g++) __VA_ARGS__

// The Box–Muller radius sqrt(−2·ln u) of u = t·2^−32, t = w + 1 ∈ [1, 2^32] rounded to float32
// (src/util/philox.ts boxMullerRadius): t's exponent and mantissa m from its bits, ln of m ∈
// [√½, √2) as 2·atanh((m−1)/(m+1)) to s⁹.
template <int G>
inline void radius(const u32xW (&w)[G], f32xW (&r)[G]) {
  const f32xW one = splatW(1.0f);
  f32xW m[G], s[G], z[G], series[G];
  i32xW e[G];
  PHILOX_EACH({
    // t = hi·65536 + (lo + 1): both terms exact, one rounding
    const f32xW t = __builtin_convertvector(reinterpret_cast<i32xW>(w[g] >> 16u), f32xW) * splatW(65536.0f) +
                    __builtin_convertvector(reinterpret_cast<i32xW>((w[g] & 0xffffu) + 1u), f32xW);
    const i32xW bits = reinterpret_cast<i32xW>(t);
    // t = m·2^e, m ∈ [0.5, 1)
    m[g] = reinterpret_cast<f32xW>((bits & 0x007fffff) | 0x3f000000);
    e[g] = (bits >> 23) - 126 - 32;
  });
  PHILOX_EACH({
    const i32xW small = m[g] < splatW(static_cast<float>(0.7071067811865476));
    m[g] = select(small, m[g] * splatW(2.0f), m[g]);
    e[g] += small;
  });
  PHILOX_EACH(s[g] = (m[g] - one) / (m[g] + one));
  PHILOX_EACH(z[g] = s[g] * s[g]);
  PHILOX_EACH(series[g] = splatW(1.0f / 7) + z[g] * splatW(1.0f / 9));
  PHILOX_EACH(series[g] = splatW(1.0f / 5) + z[g] * series[g]);
  PHILOX_EACH(series[g] = splatW(1.0f / 3) + z[g] * series[g]);
  PHILOX_EACH(series[g] = one + z[g] * series[g]);
  PHILOX_EACH({
    const f32xW lnU = splatW(2.0f) * s[g] * series[g] +
                      __builtin_convertvector(e[g], f32xW) * splatW(static_cast<float>(0.6931471805599453));
    r[g] = sqrtW(splatW(-2.0f) * lnU);
  });
}

// cos and sin of the angle 2π·w/2^32 (src/util/philox.ts boxMullerAngle): octant from the top 3
// bits, φ ∈ [0, π/4) from the next 24, Taylor series to φ⁹ and φ¹⁰.
template <int G>
inline void angle(const u32xW (&w)[G], f32xW (&cosOut)[G], f32xW (&sinOut)[G]) {
  const f32xW one = splatW(1.0f);
  f32xW phi[G], z[G], sin[G], cos[G];
  PHILOX_EACH({
    phi[g] = __builtin_convertvector(reinterpret_cast<i32xW>((w[g] >> 5u) & 0xffffffu), f32xW) * splatW(0x1p-24f) *
             splatW(static_cast<float>(0.7853981633974483));
  });
  PHILOX_EACH(z[g] = phi[g] * phi[g]);
  PHILOX_EACH({
    sin[g] = splatW(-1.0f / 5040) + z[g] * splatW(1.0f / 362880);
    cos[g] = splatW(1.0f / 40320) + z[g] * splatW(-1.0f / 3628800);
  });
  PHILOX_EACH({
    sin[g] = splatW(1.0f / 120) + z[g] * sin[g];
    cos[g] = splatW(-1.0f / 720) + z[g] * cos[g];
  });
  PHILOX_EACH({
    sin[g] = splatW(-1.0f / 6) + z[g] * sin[g];
    cos[g] = splatW(1.0f / 24) + z[g] * cos[g];
  });
  PHILOX_EACH({
    sin[g] = phi[g] * (one + z[g] * sin[g]);
    cos[g] = splatW(-1.0f / 2) + z[g] * cos[g];
  });
  PHILOX_EACH(cos[g] = one + z[g] * cos[g]);
  PHILOX_EACH({
    const i32xW octant = reinterpret_cast<i32xW>(w[g] >> 29u);  // 0..7: signed compares are the same
    const i32xW swap = ((octant + 1) >> 1 & 1) != 0;
    const f32xW c = select(swap, sin[g], cos[g]), s = select(swap, cos[g], sin[g]);
    const i32xW cosNeg = (octant >= 2) & (octant <= 5);
    const i32xW sinNeg = octant >= 4;
    cosOut[g] = select(cosNeg, -c, c);
    sinOut[g] = select(sinNeg, -s, s);
  });
}

// The low halves of a's and then b's 64-bit lanes, as one register of 32-bit lanes
inline u32xW lows(u64xQ a, u64xQ b) {
  typedef uint32_t u32x2Q __attribute__((vector_size(8 * kWords)));
  const u32x2Q x = reinterpret_cast<u32x2Q>(a), y = reinterpret_cast<u32x2Q>(b);
#if defined(__AVX512F__)
  return __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#elif defined(__AVX2__)
  return __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14);
#else
  return __builtin_shufflevector(x, y, 0, 2, 4, 6);
#endif
}

// out[4b + lane] of the kWords blocks whose lanes 0..3 are c[b], s[b], c[kWords + b], s[kWords + b]
inline void interleave(f32xW c, f32xW s, float* out) {
#if defined(__AVX512F__)
  const f32xW first = __builtin_shufflevector(c, s, 0, 16, 8, 24, 1, 17, 9, 25, 2, 18, 10, 26, 3, 19, 11, 27);
  const f32xW second = __builtin_shufflevector(c, s, 4, 20, 12, 28, 5, 21, 13, 29, 6, 22, 14, 30, 7, 23, 15, 31);
#elif defined(__AVX2__)
  const f32xW first = __builtin_shufflevector(c, s, 0, 8, 4, 12, 1, 9, 5, 13);
  const f32xW second = __builtin_shufflevector(c, s, 2, 10, 6, 14, 3, 11, 7, 15);
#else
  const f32xW first = __builtin_shufflevector(c, s, 0, 4, 2, 6);
  const f32xW second = __builtin_shufflevector(c, s, 1, 5, 3, 7);
#endif
  std::memcpy(out, &first, sizeof first);
  std::memcpy(out + kWidth, &second, sizeof second);
}

// Sets of kWords blocks, one register of 64-bit lanes each, whose Philox rounds run together:
// independent dependency chains (each round is multiply → shift → xor on the one before) that the
// CPU overlaps, where one set alone would wait on each multiply.
#if defined(PHILOX_SETS)
constexpr int kSets = PHILOX_SETS;
#else
constexpr int kSets = 4;
#endif

// Set s's counter words 0 and 1 and key word 0, in the low halves of 64-bit lanes (the high
// halves are ignored): `counters(s, c0, c1, k0)`.
//
// The 4·kWords·sets N(0, 1) values of `sets` sets of blocks at counters (c0, c1, c2, 0) under
// key (k0, 0), written to out[4·(kWords·s + b) + lane] for block b of set s: lanes 0 and 1 are
// r·cos θ and r·sin θ of words 0 (radius) and 1 (angle), lanes 2 and 3 the same of words 2 and 3.
template <int G, class Counters>
inline void gaussianSets(int64_t s0, Counters& counters, uint32_t c2, float* out) {
  u64xQ x0[G], x1[G], x2[G], x3[G], k0[G];
  for (int g = 0; g < G; g++) {
    counters(s0 + g, x0[g], x1[g], k0[g]);
    x2[g] = u64xQ{} + c2;
    x3[g] = u64xQ{};
  }
#pragma GCC unroll 10
  for (int round = 0; round < 10; round++) {
    const uint64_t k1 = static_cast<uint32_t>(round * kW1);
#pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
      const u64xQ p0 = mul32(x0[g], kM0), p1 = mul32(x2[g], kM1);
      const u64xQ a = (p1 >> 32) ^ x1[g] ^ k0[g], c = (p0 >> 32) ^ x3[g] ^ k1;
      x1[g] = p1;
      x3[g] = p0;
      x0[g] = a;
      x2[g] = c;
      k0[g] += kW0;
    }
  }
  // radius words (0 of each block, then 2) and angle words (1, then 3): the low halves
  u32xW r[G], w[G];
  f32xW rad[G], c[G], s[G];
  PHILOX_EACH(r[g] = lows(x0[g], x2[g]), w[g] = lows(x1[g], x3[g]));
  radius<G>(r, rad);
  angle<G>(w, c, s);
  PHILOX_EACH(interleave(rad[g] * c[g], rad[g] * s[g], out + 4 * kWords * g));
}

// The rest of `gaussians`: fewer than 2G sets, in groups of G, G/2, .., 1
template <int G, class Counters>
inline void gaussianRest(int64_t s, int64_t sets, Counters& counters, uint32_t c2, float* out) {
  if (sets - s >= G) {
    gaussianSets<G>(s, counters, c2, out + 4 * kWords * s);
    s += G;
  }
  if constexpr (G > 1) gaussianRest<G / 2>(s, sets, counters, c2, out);
}

// `sets` sets (see gaussianSets), kSets at a time
template <class Counters>
inline void gaussians(int64_t sets, Counters counters, uint32_t c2, float* out) {
  int64_t s = 0;
  for (; s + kSets <= sets; s += kSets) gaussianSets<kSets>(s, counters, c2, out + 4 * kWords * s);
  gaussianRest<kSets / 2>(s, sets, counters, c2, out);
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
  u64xQ lanes;
  for (int b = 0; b < kWords; b++) lanes[b] = b;
  auto counters = [&](int64_t s, u64xQ& c0, u64xQ& c1, u64xQ& k0) {
    c0 = lanes + static_cast<uint64_t>(s * kWords);
    c1 = u64xQ{} + q;
    k0 = u64xQ{} + seed;
  };
  constexpr int kValues = 4 * kWords;
  const int64_t whole = l.columns / kValues;
  gaussians(whole, counters, sample, out);
  if (l.columns > whole * kValues) {
    // the last columns: a set's values, the rest spare
    float g[kValues];
    gaussianSets<1>(whole, counters, sample, g);
    std::memcpy(out + whole * kValues, g, (l.columns - whole * kValues) * sizeof(float));
  }
  if (std != 1.0f)
    for (int64_t e = 0; e < l.columns; e++) out[e] *= std;
}

}  // namespace philox
