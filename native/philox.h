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
#elif defined(__ARM_NEON)
#include <arm_neon.h>
#endif

namespace philox {

constexpr uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
constexpr uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;

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

// Philox's rounds on sets of blocks: kSets sets at a time, each step of all of them before the
// next, independent dependency chains (each round is multiply → shift → xor on the one before)
// that the CPU overlaps where one set alone would wait on each multiply.
constexpr int kSets = 4;

#if defined(__AVX2__)
// x86: a set is one register of 64-bit lanes, 8 blocks with AVX-512, 4 with AVX2, each 32-bit
// word in the low half of a lane, so that the 32×32→64 products are lane-wise multiplies
// (vpmuludq). The high halves of x1 and x3 carry the products' and of x0 and x2 garbage, which
// the multiplies ignore and the outputs drop.
constexpr int kSetBlocks = kWidth / 2;
typedef uint64_t Lanes __attribute__((vector_size(4 * kWidth)));

// x's low halves × m's, 32×32→64 bits (GCC emits a 64×64 multiply for x * m)
inline Lanes mul32(Lanes x, Lanes m) {
#if defined(__AVX512F__)
  return reinterpret_cast<Lanes>(_mm512_mul_epu32(reinterpret_cast<__m512i>(x), reinterpret_cast<__m512i>(m)));
#else
  return reinterpret_cast<Lanes>(_mm256_mul_epu32(reinterpret_cast<__m256i>(x), reinterpret_cast<__m256i>(m)));
#endif
}

// The low halves of a's and then b's lanes, as one register of 32-bit lanes
inline u32xW lows(Lanes a, Lanes b) {
  const u32xW x = reinterpret_cast<u32xW>(a), y = reinterpret_cast<u32xW>(b);
#if defined(__AVX512F__)
  return __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
#else
  return __builtin_shufflevector(x, y, 0, 2, 4, 6, 8, 10, 12, 14);
#endif
}
#else
// NEON, SIMD128: a set is one register of 32-bit lanes, 4 blocks, the products of its words as
// two extending multiplies (half the operations of 64-bit lanes, two blocks a register).
constexpr int kSetBlocks = 4;
typedef u32xW Lanes;

// x·m, 32×32→64 bits lane by lane: the high and low halves
inline void mul32(Lanes x, Lanes m, Lanes& hi, Lanes& lo) {
#if defined(__wasm_simd128__)
  const v128_t v = reinterpret_cast<v128_t>(x);
  v128_t mm = reinterpret_cast<v128_t>(m);
  // opaque to clang at each use: else it folds or hoists the extension of the constant and emits
  // i64x2.mul (about 7 instructions in V8) for extmul (one)
  __asm__ volatile("" : "+r"(mm));
  const u32xW a = reinterpret_cast<u32xW>(wasm_u64x2_extmul_low_u32x4(v, mm));
  const u32xW b = reinterpret_cast<u32xW>(wasm_u64x2_extmul_high_u32x4(v, mm));
#elif defined(__ARM_NEON)
  const uint32x4_t v = reinterpret_cast<uint32x4_t>(x), mm = reinterpret_cast<uint32x4_t>(m);
  const u32xW a = reinterpret_cast<u32xW>(vmull_u32(vget_low_u32(v), vget_low_u32(mm)));
  const u32xW b = reinterpret_cast<u32xW>(vmull_high_u32(v, mm));
#else
  typedef uint64_t u64x2 __attribute__((vector_size(16)));
  typedef uint32_t u32x2 __attribute__((vector_size(8)));
  const u32x2 xl = {x[0], x[1]}, xh = {x[2], x[3]}, ml = {m[0], m[1]};
  const u32xW a = reinterpret_cast<u32xW>(__builtin_convertvector(xl, u64x2) * __builtin_convertvector(ml, u64x2));
  const u32xW b = reinterpret_cast<u32xW>(__builtin_convertvector(xh, u64x2) * __builtin_convertvector(ml, u64x2));
#endif
  lo = __builtin_shufflevector(a, b, 0, 2, 4, 6);
  hi = __builtin_shufflevector(a, b, 1, 3, 5, 7);
}
#endif

// A set's counter words 0 and 1 and key word 0, lane b for its block b
struct Counters {
  Lanes c0, c1, k0;
};

// The 4·kSetBlocks·G N(0, 1) values of sets s0..s0 + G − 1, set s being kSetBlocks blocks at
// counters (c0, c1, c2, 0) under key (k0, 0) with (c0, c1, k0) = counters(s), written to
// out[4·(kSetBlocks·(s − s0) + b) + lane] for block b of set s: lanes 0 and 1 are r·cos θ and
// r·sin θ of words 0 (radius) and 1 (angle), lanes 2 and 3 the same of words 2 and 3.
template <int G, class CountersOf>
inline void gaussianSets(int64_t s0, const CountersOf& counters, uint32_t c2, float* out) {
  const Lanes m0 = Lanes{} + kM0, m1 = Lanes{} + kM1;
  Lanes x0[G], x1[G], x2[G], x3[G], k0[G];
  for (int g = 0; g < G; g++) {
    const Counters c = counters(s0 + g);
    x0[g] = c.c0;
    x1[g] = c.c1;
    k0[g] = c.k0;
    x2[g] = Lanes{} + c2;
    x3[g] = Lanes{};
  }
#pragma GCC unroll 10
  for (int round = 0; round < 10; round++) {
    const uint32_t k1 = round * kW1;
#pragma GCC unroll 8
    for (int g = 0; g < G; g++) {
#if defined(__AVX2__)
      const Lanes p0 = mul32(x0[g], m0), p1 = mul32(x2[g], m1);
      const Lanes a = (p1 >> 32) ^ x1[g] ^ k0[g], c = (p0 >> 32) ^ x3[g] ^ k1;
      x1[g] = p1;
      x3[g] = p0;
#else
      Lanes hi0, lo0, hi1, lo1;
      mul32(x0[g], m0, hi0, lo0);
      mul32(x2[g], m1, hi1, lo1);
      const Lanes a = hi1 ^ x1[g] ^ k0[g], c = hi0 ^ x3[g] ^ k1;
      x1[g] = lo1;
      x3[g] = lo0;
#endif
      x0[g] = a;
      x2[g] = c;
      k0[g] += kW0;
    }
  }
#if defined(__AVX2__)
  // radius words (0 of each block, then 2) and angle words (1, then 3) of each set
  u32xW r[G], w[G];
  f32xW rad[G], c[G], s[G];
  PHILOX_EACH(r[g] = lows(x0[g], x2[g]), w[g] = lows(x1[g], x3[g]));
  radius<G>(r, rad);
  angle<G>(w, c, s);
  PHILOX_EACH({
    // out[4b + lane] = c[b], s[b], c[kSetBlocks + b], s[kSetBlocks + b]
    const f32xW zc = rad[g] * c[g], zs = rad[g] * s[g];
#if defined(__AVX512F__)
    const f32xW first = __builtin_shufflevector(zc, zs, 0, 16, 8, 24, 1, 17, 9, 25, 2, 18, 10, 26, 3, 19, 11, 27);
    const f32xW second = __builtin_shufflevector(zc, zs, 4, 20, 12, 28, 5, 21, 13, 29, 6, 22, 14, 30, 7, 23, 15, 31);
#else
    const f32xW first = __builtin_shufflevector(zc, zs, 0, 8, 4, 12, 1, 9, 5, 13);
    const f32xW second = __builtin_shufflevector(zc, zs, 2, 10, 6, 14, 3, 11, 7, 15);
#endif
    std::memcpy(out + 2 * kWidth * g, &first, sizeof first);
    std::memcpy(out + 2 * kWidth * g + kWidth, &second, sizeof second);
  });
#else
  // radius words 0 and 2, angle words 1 and 3 of each set: registers 2g and 2g + 1
  u32xW r[2 * G], w[2 * G];
  f32xW rad[2 * G], c[2 * G], s[2 * G];
  PHILOX_EACH(r[2 * g] = x0[g], r[2 * g + 1] = x2[g], w[2 * g] = x1[g], w[2 * g + 1] = x3[g]);
  radius<2 * G>(r, rad);
  angle<2 * G>(w, c, s);
  PHILOX_EACH({
    // out[4b + lane]: block b's lanes are a 4 × 4 transpose's rows
    const f32xW zc0 = rad[2 * g] * c[2 * g], zs0 = rad[2 * g] * s[2 * g];
    const f32xW zc2 = rad[2 * g + 1] * c[2 * g + 1], zs2 = rad[2 * g + 1] * s[2 * g + 1];
    const f32xW t0 = __builtin_shufflevector(zc0, zs0, 0, 4, 1, 5), t1 = __builtin_shufflevector(zc0, zs0, 2, 6, 3, 7);
    const f32xW t2 = __builtin_shufflevector(zc2, zs2, 0, 4, 1, 5), t3 = __builtin_shufflevector(zc2, zs2, 2, 6, 3, 7);
    const f32xW rows[4] = {__builtin_shufflevector(t0, t2, 0, 1, 4, 5), __builtin_shufflevector(t0, t2, 2, 3, 6, 7),
                           __builtin_shufflevector(t1, t3, 0, 1, 4, 5), __builtin_shufflevector(t1, t3, 2, 3, 6, 7)};
    std::memcpy(out + 16 * g, rows, sizeof rows);
  });
#endif
}

// The rest of `gaussians`: fewer than 2G sets, in groups of G, G/2, .., 1
template <int G, class CountersOf>
inline void gaussianRest(int64_t s, int64_t sets, const CountersOf& counters, uint32_t c2, float* out) {
  if (sets - s >= G) {
    gaussianSets<G>(s, counters, c2, out + 4 * kSetBlocks * s);
    s += G;
  }
  if constexpr (G > 1) gaussianRest<G / 2>(s, sets, counters, c2, out);
}

// `sets` sets (see gaussianSets), kSets at a time
template <class CountersOf>
inline void gaussians(int64_t sets, const CountersOf& counters, uint32_t c2, float* out) {
  int64_t s = 0;
  for (; s + kSets <= sets; s += kSets) gaussianSets<kSets>(s, counters, c2, out + 4 * kSetBlocks * s);
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
  Lanes lanes{};
  for (int b = 0; b < kSetBlocks; b++) lanes[b] = b;
  auto counters = [&](int64_t s) {
    return Counters{lanes + static_cast<uint32_t>(s * kSetBlocks), Lanes{} + q, Lanes{} + seed};
  };
  constexpr int kValues = 4 * kSetBlocks;
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
