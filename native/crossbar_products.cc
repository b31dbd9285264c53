// The fused bit-serial × bit-sliced crossbar product (xbar's `crossbarProducts`): for every
// input plane and weight slice, the 64..512-row product, its exact read noise
// σ·sqrt(Σx²G²)·ξ, output noise, the ADC's round-and-clip and the shift-add, in one pass over
// each tile; with a dynamic DAC range also the DAC before and the digital gain and row-tile
// sum after, and for K and V the writing of their cells (write noise) as each tile is copied.
// ONNX Runtime needs ~8 passes over the 28× expanded pre-ADC values for this; here they never
// leave registers. The arithmetic is the graph version's (src/analog/mvm.ts and products.ts,
// which test/analog/native.test.ts compares against), and so is the noise: drawn here from the
// counter-based generator of native/philox.h, keyed as the graph's noise leaves are (noiseAt).
#ifndef __wasm__
#include <node_api.h>
#endif

#include "philox.h"

// WriteKind and the pcm fit, generated from src/analog/write-noise.ts by scripts/build-native.mjs
#include "native_constants.h"

#include <algorithm>
#include <atomic>
#include <functional>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>
// WebAssembly has no system threads or N-API: native/crossbar_products_wasm.cc gives it its
// own Pool (threads on shared memory) and exports
#ifndef __wasm__
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#endif

#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__wasm_simd128__)
#include <wasm_simd128.h>
#endif

namespace {

// One vector of kLanes floats: an AVX-512 register, else 8 (an AVX2 register; two 128-bit
// registers on arm64 or WebAssembly). Every lane runs the same operations in the same order, so
// every width gives the same numbers. kRegisters: how many such vectors the registers hold.
#if defined(__AVX512F__)
constexpr int kLanes = 16;
constexpr int kRegisters = 32;
#elif defined(__wasm__)
// one 128-bit register: V8 gives WebAssembly the 16 SSE/AVX registers of x86-64
constexpr int kLanes = 4;
constexpr int kRegisters = 16;
#else
constexpr int kLanes = 8;
constexpr int kRegisters = 16;
#endif
typedef float vf __attribute__((vector_size(4 * kLanes)));
// A work item covers a chunk of 16·H columns of every slice (the noise layout's chunk, the same
// on every width): H = 1 when squares are read too (weights and squares of a 64-row tile then
// fit the L1 together), else 4.

struct Problem {
  const float* codes;     // [B, R, N, rows] signed integer DAC codes, or null: `inputs` instead
  // The DAC here (dynamic range): inputs [B, R, N, rows] → codes ±rint(|x·(dacLevels/range)|)
  // with range = max(max x, −min x, 1e-30) per vector, as the graph's `dac` computes them (one
  // pass instead of ~12 ONNX ops over the inputs); `range` holds each vector's range.
  const float* inputs;
  float dacLevels;
  std::vector<float> range;
  int planes;             // bit-serial magnitude planes K (1..31)
  const float* weights;   // [J, Bw, R, rows, C]; × weightScale: ADC steps per plane unit
  const float* squares;   // same layout, or null; × squareScale: (σ_R·scale)²
  float weightScale, squareScale;
  // the read and output noise: per plane the seed of its noise (noiseAt), or empty (none); the
  // samples of the batch (along B or along N) and the index of the first; σ_out in ADC steps and
  // its square (with squares, read and output noise are one draw: sqrt(v + σ_out²)·ξ)
  std::vector<uint32_t> noiseSeeds;
  int samples;
  bool samplesAlongB;
  int64_t firstSample;
  float outSigma, outVar;
  const float* coef;      // [K, J]: slice weight × plane weight
  int levels;             // ADC levels each side of zero, 0: ideal ADC
  // per (row tile, column) [R, C], what a value before the ADC is multiplied by just before the
  // conversion (a calibrated ADC range: full scale / the column's range), or null: 1
  const float* adcGain;
  int B, Bw, R, N, rows, C, J;
  // the digital gain, one value per (batch, row tile, vector, block of gainBlock columns):
  // [B, R, N, ⌈C/gainBlock⌉], or null (the codes as they are)
  const float* gain;
  // or, with `inputs`: the gain's per-column part [Bg, R, ⌈C/gainBlock⌉] (tile scale × ADC
  // step; Bg = 1 or B), multiplied by each vector's DAC range here
  const float* gainScale;
  int gainBatches;
  int gainBlock;
  bool sumTiles;          // out is Σ over row tiles of gain × codes, [B, N, C]; else [B, R, N, C]
  float* out;
  // which rows are on, per input vector and plane, by sign: [B, R, N, planes, words] bit i of
  // word i/64 (built once, shared by every column chunk)
  int words;
  std::vector<uint64_t> posMask, negMask;
  // An operand written into the crossbars for this input (K, V): given as signed unit values
  // instead of weights and squares, its cells are written here as the tile is copied (the
  // graph's dynamicProduct, src/analog/dynamic.ts, does the same in ~40 passes over J× the
  // operand). Null: `weights` (and `squares`) hold programmed cells.
  const float* unit;   // [Bw, R, rows, C] in [−1, 1]
  struct Write {
    WriteKind kind;    // programming noise
    float levels;      // 2^weightBits − 1 for bit-sliced cells, 0 for analog cells (J = 1)
    float base;        // 2^bitsPerCell, the base of the slices' digits
    float gMin, gMax, dG, dGSquared;  // µS; ΔG = G_MAX − G_MIN and its square (float32 as the graph's)
    float noise;       // relative: σ; writeSqrt: γσ; additive: σ·G_MAX; pcm: G_MAX/G_ref·scale
    float c0, c1, c2;  // pcm: the polynomial of the programming noise's std in G/G_MAX (kPcmProg*)
    const float* xi[2];  // [J, Bw, R, rows, C] N(0, 1) for the G+ and G− devices (none: null)
    float power[9];    // base^−j for j = 0..J, float32 (the graph's constants)
    bool squares;      // whether the squares are needed (read noise)
  } write;
};

#ifndef __wasm__
// Threads kept between calls: a model's forward makes ~150 parallel regions, too many to start
// and join threads for each. `run(n, f)` runs f on n threads, the caller's among them, and
// returns when all are done; callers on two threads (two worker_threads loading the addon) take
// turns. The pool is never destroyed: its threads wait on a condition variable and end with the
// process.
class Pool {
 public:
  void run(int n, const std::function<void()>& f) {
    if (n <= 1) {
      f();
      return;
    }
    std::lock_guard<std::mutex> turn(region_);
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (static_cast<int>(threads_.size()) < n - 1) {
        threads_.emplace_back([this, index = static_cast<int>(threads_.size())] { loop(index); });
        threads_.back().detach();
      }
      task_ = &f;
      wanted_ = n - 1;
      pending_ = n - 1;
      generation_++;
    }
    wake_.notify_all();
    f();
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
  }

 private:
  void loop(int index) {
    int64_t seen = 0;
    for (;;) {
      const std::function<void()>* task;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen && index < wanted_; });
        seen = generation_;
        task = task_;
      }
      (*task)();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
  std::mutex region_, mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  const std::function<void()>* task_ = nullptr;
  int wanted_ = 0, pending_ = 0;
  int64_t generation_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed (see Pool)
  return *p;
}
#endif

// Runs f(0..count−1) on `threads` threads (the caller's among them), in blocks of indices.
template <class F>
void parallelFor(int64_t count, int threads, F f) {
  const int64_t block = std::max<int64_t>(1, count / (8 * threads));
  std::atomic<int64_t> next{0};
  const std::function<void()> worker = [&]() {
    for (int64_t start; (start = next.fetch_add(block)) < count;)
      for (int64_t i = start; i < std::min(count, start + block); i++) f(i);
  };
  pool().run(static_cast<int>(std::min<int64_t>(threads, count)), worker);
}

// The on-rows of every input vector's planes, split by sign.
void buildMasks(Problem& p, int threads) {
  const int planes = p.planes;
  p.words = (p.rows + 63) / 64;
  const int64_t vectors = static_cast<int64_t>(p.B) * p.R * p.N;
  p.posMask.assign(static_cast<size_t>(vectors) * planes * p.words, 0);
  p.negMask.assign(p.posMask.size(), 0);
  if (p.inputs) p.range.assign(static_cast<size_t>(vectors), 0.0f);
  parallelFor(vectors, threads, [&](int64_t vec) {
    const float* q = p.inputs ? p.inputs + vec * p.rows : p.codes + vec * p.rows;
    uint64_t* pos = p.posMask.data() + vec * planes * p.words;
    uint64_t* neg = p.negMask.data() + vec * planes * p.words;
    float scale = 1.0f;
    if (p.inputs) {
      float hi = -INFINITY, lo = INFINITY;
      for (int i = 0; i < p.rows; i++) hi = std::max(hi, q[i]), lo = std::min(lo, q[i]);
      const float range = std::max(std::max(hi, -lo), 1e-30f);
      p.range[vec] = range;
      scale = p.dacLevels / range;
    }
    for (int i = 0; i < p.rows; i++) {
      // branch-free: the bits of a magnitude are as good as random. Inputs become codes as in
      // the graph: fl(x·fl(levels/range)), |·| rounded half to even (a dynamic range needs no clip)
      const float code = p.inputs ? __builtin_rintf(std::fabs(q[i] * scale)) : std::fabs(q[i]);
      const uint64_t m = static_cast<uint64_t>(code);
      const uint64_t negative = q[i] < 0, shift = i & 63;
      const int word = i / 64;
      for (int k = 0; k < planes; k++) {
        const uint64_t on = (m >> k) & 1;
        pos[k * p.words + word] |= (on & (negative ^ 1)) << shift;
        neg[k * p.words + word] |= (on & negative) << shift;
      }
    }
  });
}

inline vf vload(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void vstore(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
inline vf splat(float x) { return vf{} + x; }

// Lane-wise operations. GCC vectorises element loops of rounding, square roots and floors with
// AVX-512 but leaves them scalar with AVX2, so there they are the CPU's vector instructions; the
// same results lane by lane (round half to even, correctly rounded square roots).
typedef int32_t vi __attribute__((vector_size(4 * kLanes)));
inline vf select(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }
// std::max and std::min: a NaN in `a` comes through
inline vf vmax(vf a, vf b) { return select(a < b, b, a); }
inline vf vmin(vf a, vf b) { return select(b < a, b, a); }
inline vf vabs(vf x) { return (vf)((vi)x & (vi{} + 0x7fffffff)); }
#if defined(__AVX512F__)
inline vf vrint(vf x) { return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vfloor(vf x) { return (vf)_mm512_roundscale_ps((__m512)x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline vf vsqrt(vf x) { return (vf)_mm512_sqrt_ps((__m512)x); }
#elif defined(__AVX__)
inline vf vrint(vf x) { return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
inline vf vfloor(vf x) { return (vf)_mm256_round_ps((__m256)x, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }
inline vf vsqrt(vf x) { return (vf)_mm256_sqrt_ps((__m256)x); }
#elif defined(__wasm_simd128__)
// clang leaves these lane by lane in WebAssembly, through memory
inline vf vrint(vf x) { return (vf)wasm_f32x4_nearest((v128_t)x); }
inline vf vfloor(vf x) { return (vf)wasm_f32x4_floor((v128_t)x); }
inline vf vsqrt(vf x) { return (vf)wasm_f32x4_sqrt((v128_t)x); }
#else
inline vf vrint(vf x) {
  vf r;
  for (int e = 0; e < kLanes; e++) r[e] = __builtin_rintf(x[e]);
  return r;
}
inline vf vfloor(vf x) {
  vf r;
  for (int e = 0; e < kLanes; e++) r[e] = __builtin_floorf(x[e]);
  return r;
}
inline vf vsqrt(vf x) {
  vf r;
  for (int e = 0; e < kLanes; e++) r[e] = __builtin_sqrtf(x[e]);
  return r;
}
#endif

// dst[0..padded) = src[0..width) × scale, zero-padded
inline void scaledCopy(float* dst, const float* src, int width, int padded, float scale) {
  int e = 0;
  for (; e + kLanes <= width; e += kLanes) vstore(dst + e, vload(src + e) * splat(scale));
  for (; e < width; e++) dst[e] = src[e] * scale;
  for (; e < padded; e++) dst[e] = 0;
}

// One device written to conductance g (µS) with write noise ξ, as the tensor forms of WRITE_KINDS
// (src/analog/write-noise.ts): the same float32 operations in the same order.
inline vf writeDevice(const Problem::Write& wr, vf g, vf xi) {
  vf r;
  switch (wr.kind) {
    case WriteKind::relative:
      r = g * (xi * splat(wr.noise) + splat(1.0f));
      break;
    case WriteKind::writeSqrt:
      // floored at G_MIN, where the law's noise vanishes
      r = vmax(g + vsqrt(vmax(g - splat(wr.gMin), vf{}) * splat(wr.dG)) * xi * splat(wr.noise), splat(wr.gMin));
      break;
    case WriteKind::additive:
      r = g + xi * splat(wr.noise);
      break;
    case WriteKind::pcm: {
      const vf gh = g / splat(wr.gMax);
      r = g + vmax((gh * splat(wr.c2) + splat(wr.c1)) * gh + splat(wr.c0), vf{}) * splat(wr.noise) * xi;
      break;
    }
    case WriteKind::none:
      return g;
  }
  return vmax(r, vf{});
}

// Writes the cells of one row of a written operand: unit values u (kLanes columns, `width` of them
// real) → for each slice j, the pair's (G+ − G−)/ΔG × weightScale into w[j·16H..] and
// (G+² + G−²)/ΔG² × squareScale into s (zero past `width`). `at`: the row's index in a
// [Bw, R, rows, C] operand; slice j's noise sits at j·(Bw·R·rows·C) + at.
template <int J>
inline void writeRow(const Problem& p, const float* u, int64_t at, int64_t sliceStride, int width, float* w,
                     float* s, int stride) {
  const Problem::Write& wr = p.write;
  // a partial load only at the operand's last columns
  const bool whole = width == kLanes;
  auto load = [&](const float* src) {
    if (whole) return vload(src);
    vf t{};
    for (int e = 0; e < width; e++) t[e] = src[e];
    return t;
  };
  const vf x = load(u);
  const vf sg = select(x > 0, splat(1.0f), select(x < 0, splat(-1.0f), vf{}));
  const vf mag = vrint(vabs(x) * splat(wr.levels));  // round half to even, as ONNX Round
  // the digits of the magnitude: ⌊m·b^−j⌋ − b·⌊m·b^−(j+1)⌋, each b^−j a float32 constant
  vf floors[J + 1];
  for (int j = 0; j <= J; j++)
    floors[j] = vfloor(mag * splat(wr.power[j]));
  for (int j = 0; j < J; j++) {
    vf signedCell;
    if (wr.levels == 0) {
      signedCell = x;  // analog cells: the unit value itself
    } else {
      const vf digit = floors[j] - floors[j + 1] * splat(wr.base);
      signedCell = digit / splat(wr.base - 1.0f) * sg;
    }
    const vf tp = vmax(signedCell, vf{}) * splat(wr.dG) + splat(wr.gMin);
    const vf tn = vmax(-signedCell, vf{}) * splat(wr.dG) + splat(wr.gMin);
    const vf xp = wr.kind != WriteKind::none ? load(wr.xi[0] + j * sliceStride + at) : vf{};
    const vf xn = wr.kind != WriteKind::none ? load(wr.xi[1] + j * sliceStride + at) : vf{};
    const vf gp = writeDevice(wr, tp, xp), gn = writeDevice(wr, tn, xn);
    vf eff = (gp - gn) / splat(wr.dG) * splat(p.weightScale);
    vf sq = (gp * gp + gn * gn) / splat(wr.dGSquared) * splat(p.squareScale);
    for (int e = width; e < kLanes; e++) eff[e] = sq[e] = 0;
    vstore(w + j * stride, eff);
    if (s) vstore(s + j * stride, sq);
  }
}

// round half to even, then clip: the ADC code (std::nearbyint under the default rounding mode)
inline vf adc(vf x, float levels) { return vmin(vmax(vrint(x), splat(-levels)), splat(levels)); }

// The generator's blocks for one vector's noise (noiseAt): every plane's, slice's and column's of
// a chunk of CW columns, in the order [plane][slice][column / 4], kSetBlocks blocks a set (the last
// padded with spare blocks). Per set, lane by lane: the block's column (counter word 0) less the
// chunk's first, its slice's row offset (word 1) from the vector's row, and its plane's seed.
struct NoiseSets {
  int64_t sets = 0;
  std::vector<philox::Lanes> column, row, seed;
};

// The noise's row stride between slices and the sets of noiseAt; see NoiseSets
template <int J, int CW>
NoiseSets noiseSets(const Problem& p) {
  NoiseSets n;
  const int64_t blocks = static_cast<int64_t>(p.planes) * J * (CW / 4);
  n.sets = (blocks + philox::kSetBlocks - 1) / philox::kSetBlocks;
  const uint32_t stride = static_cast<uint32_t>(
      p.samplesAlongB ? static_cast<int64_t>(p.B / p.samples) * p.R * p.N : static_cast<int64_t>(p.B) * p.R * (p.N / p.samples));
  n.column.assign(n.sets, philox::Lanes{});
  n.row.assign(n.sets, philox::Lanes{});
  n.seed.assign(n.sets, philox::Lanes{});
  for (int64_t i = 0; i < blocks; i++) {
    const int64_t row = i / (CW / 4), s = i / philox::kSetBlocks, lane = i % philox::kSetBlocks;  // row: plane · J + slice
    n.column[s][lane] = i % (CW / 4);
    n.row[s][lane] = static_cast<uint32_t>(row % J) * stride;
    n.seed[s][lane] = p.noiseSeeds[row / J];
  }
  return n;
}

// The N(0, 1) noise of vector (b, r, n)'s outputs, every plane k and slice j, columns c0..c0 + CW
// (c0 a multiple of 4), into xi[(k·J + j)·CW + column − c0] (and spare values past them, up to
// 4·kSetBlocks·sets): the elements (j, b, r, n, column) of the graph's noise leaf [J, B, R, N, C] of
// plane k's seed, whose batch axis is B or N (src/util/philox.ts fillNoise, native/philox.h).
// All at once, so that the generator has many blocks to advance side by side.
inline void noiseAt(const Problem& p, const NoiseSets& sets, int b, int r, int n, int c0, float* xi) {
  int64_t sample, q0;
  if (p.samplesAlongB) {
    const int per = p.B / p.samples;
    sample = b / per;
    q0 = (static_cast<int64_t>(b % per) * p.R + r) * p.N + n;
  } else {
    const int per = p.N / p.samples;
    sample = n / per;
    q0 = (static_cast<int64_t>(b) * p.R + r) * per + n % per;
  }
  const uint32_t column = c0 / 4, row = static_cast<uint32_t>(q0);
  auto counters = [&](int64_t s) {
    return philox::Counters{sets.column[s] + column, sets.row[s] + row, sets.seed[s]};
  };
  philox::gaussians(sets.sets, counters, static_cast<uint32_t>(p.firstSample + sample), xi);
}

// Adds (Negative: subtracts) the weights of the rows set in `mask` (rows base..base+63) into y
// and their squares into v, for V vectors of every slice from column `lo` of a chunk of CW
// columns (w and s: [rows][J][CW]). The set bits are visited straight from the mask: a list of
// them built first costs more (its loops' exits are mispredicted too). J and V are unrolled, so
// the accumulators stay in registers.
template <int J, int CW, int V, bool Squares, bool Negative>
inline void accumulateRows(uint64_t mask, int base, int lo, const float* w, const float* s, vf (&y)[J][V],
                           vf (&v)[J][V]) {
  for (; mask; mask &= mask - 1) {
    const int64_t at = (base + __builtin_ctzll(mask)) * static_cast<int64_t>(J * CW) + lo;
#pragma GCC unroll 16
    for (int j = 0; j < J; j++) {
#pragma GCC unroll 16
      for (int h = 0; h < V; h++) {
        const vf wv = vload(w + at + j * CW + h * kLanes);
        y[j][h] = Negative ? y[j][h] - wv : y[j][h] + wv;
        if (Squares) v[j][h] += vload(s + at + j * CW + h * kLanes);
      }
    }
  }
}

// The vectors of a chunk one pass over the on-rows sums: as many as keep its accumulators (J·V,
// twice with squares) in about three quarters of the registers, a power of two dividing the
// chunk's vectors.
constexpr int passVectors(int J, int chunkVectors, bool squares) {
  int v = 1;
  while (2 * v <= chunkVectors && 2 * v * J * (squares ? 2 : 1) <= kRegisters * 3 / 4) v *= 2;
  return v;
}

// One work item: batch b, row tile r, columns [c0, c0 + 16H), vectors [n0, n1).
// w and s: the item's weights and squares copied to [rows][J][16H] (zero-padded columns); xi:
// room for a vector's noise (noiseAt).
template <int J, int H, bool Squares>
void item(const Problem& p, int b, int r, int c0, int n0, int n1, const float* w, const float* s,
          const NoiseSets& sets, float* xi) {
  constexpr int CW = 16 * H;
  constexpr int V = passVectors(J, CW / kLanes, Squares);
  const int width = std::min(CW, p.C - c0);
  const int planes = p.planes;
  const float levels = static_cast<float>(p.levels);
  const int words = p.words;
  const int blocks = (p.C + p.gainBlock - 1) / p.gainBlock;
  // the chunk's ADC gains, zero past the last column (whose lanes are never stored)
  alignas(64) float adcGain[CW] = {};
  if (p.adcGain)
    for (int e = 0; e < width; e++) adcGain[e] = p.adcGain[static_cast<int64_t>(r) * p.C + c0 + e];
  for (int n = n0; n < n1; n++) {
    const int64_t vec = (static_cast<int64_t>(b) * p.R + r) * p.N + n;
    const uint64_t* posMask = p.posMask.data() + vec * planes * words;
    const uint64_t* negMask = p.negMask.data() + vec * planes * words;
    // the digital gain and the sum over row tiles (row tile 0 writes, the others add: one
    // thread does every row tile of a chunk, in order)
    float* o = p.out + (p.sumTiles ? static_cast<int64_t>(b) * p.N + n : vec) * p.C + c0;
    // the gain row of this vector: given, or the column part × this vector's DAC range (the
    // graph's product, float32)
    const int64_t bg = p.gainBatches == 1 ? 0 : b;
    const float* g = p.gain ? p.gain + vec * blocks : p.gainScale ? p.gainScale + (bg * p.R + r) * blocks : nullptr;
    const float ranged = p.gainScale ? p.range[vec] : 1.0f;
    const bool add = p.sumTiles && r > 0;
    if (!p.noiseSeeds.empty()) noiseAt(p, sets, b, r, n, c0, xi);
    // passes over V vectors of the chunk's columns each
    for (int lo0 = 0; lo0 < width; lo0 += V * kLanes) {
      vf total[J][V];
      for (int j = 0; j < J; j++)
        for (int h = 0; h < V; h++) total[j][h] = vf{};
      for (int k = 0; k < planes; k++) {
        vf y[J][V], v[J][V];
#pragma GCC unroll 16
        for (int j = 0; j < J; j++)
          for (int h = 0; h < V; h++) y[j][h] = v[j][h] = vf{};
        // the rows whose input is on in this plane, split by sign: only those add anything, and
        // a bit plane is mostly zeros
        for (int word = 0; word < words; word++)
          accumulateRows<J, CW, V, Squares, false>(posMask[k * words + word], word * 64, lo0, w, s, y, v);
        for (int word = 0; word < words; word++)
          accumulateRows<J, CW, V, Squares, true>(negMask[k * words + word], word * 64, lo0, w, s, y, v);
        // read noise, output noise and the ADC of every slice's outputs; shift-add
#pragma GCC unroll 16
        for (int j = 0; j < J; j++) {
          const float cf = p.coef[k * J + j];
#pragma GCC unroll 16
          for (int h = 0; h < V; h++) {
            const int lo = lo0 + h * kLanes;
            if (lo >= width) break;
            vf val = y[j][h];
            if (!p.noiseSeeds.empty())
              val += (Squares ? vsqrt(v[j][h] + splat(p.outVar)) : splat(p.outSigma)) *
                     vload(xi + (k * J + j) * CW + lo);
            if (p.adcGain) val *= vload(adcGain + lo);
            if (p.levels) val = adc(val, levels);
            total[j][h] += splat(cf) * val;
          }
        }
      }
      for (int h = 0; h < V; h++) {
        const int lo = lo0 + h * kLanes;
        if (lo >= width) break;
        vf sum = vf{};
        for (int j = 0; j < J; j++) sum += total[j][h];
        const int at = c0 + lo;
        if (lo + kLanes <= width && (!g || p.gainBlock == 1 || (p.gainBlock % kLanes == 0 && at % kLanes == 0))) {
          // whole columns under one gain block or one gain each: vector arithmetic, not a
          // division per column to find its block
          if (g && p.gainScale) sum *= p.gainBlock == 1 ? vload(g + at) * splat(ranged) : splat(g[at / p.gainBlock] * ranged);
          else if (g) sum *= p.gainBlock == 1 ? vload(g + at) : splat(g[at / p.gainBlock]);
          vstore(o + lo, add ? vload(o + lo) + sum : sum);
          continue;
        }
        for (int e = 0; e < kLanes && lo + e < width; e++) {
          const float gain = g ? (p.gainScale ? g[(at + e) / p.gainBlock] * ranged : g[(at + e) / p.gainBlock]) : 1.0f;
          const float v = g ? sum[e] * gain : sum[e];
          o[lo + e] = add ? o[lo + e] + v : v;
        }
      }
    }
  }
}

template <int J, int H, bool Squares>
void run(const Problem& p, int threads) {
  constexpr int CW = 16 * H;
  const int chunks = (p.C + CW - 1) / CW;
  // An item is a group of up to 4 neighbouring column chunks of a tile (batch, row tile) with
  // all its vectors: the group's weights are copied at once, so each weight row (rows lie C
  // floats apart) is read as 4·16 floats in a row rather than 16. Vectors are split into blocks
  // only when there are too few tiles to share; when row tiles are summed, an item holds every
  // row tile of its chunks (in order).
  constexpr int kGroup = 4;
  const int groups = (chunks + kGroup - 1) / kGroup;
  const int perItem = p.sumTiles ? p.R : 1;
  const int64_t tiles = static_cast<int64_t>(p.B) * (p.R / perItem) * groups;
  const int nBlocks = static_cast<int>(std::min<int64_t>(p.N, (2 * threads + tiles - 1) / tiles));
  const int nBlock = (p.N + nBlocks - 1) / nBlocks;
  const int64_t items = tiles * nBlocks;
  const NoiseSets sets = p.noiseSeeds.empty() ? NoiseSets{} : noiseSets<J, CW>(p);
  std::atomic<int64_t> next{0};
  const std::function<void()> worker = [&]() {
    const size_t chunkSize = static_cast<size_t>(p.rows) * J * CW;
    std::vector<float> w(kGroup * chunkSize), s(Squares ? w.size() : 0), xi(sets.sets * 4 * philox::kSetBlocks);
    int64_t last = -1;  // (b, r, group) of the buffers
    for (int64_t it; (it = next.fetch_add(1)) < items;) {
      // vector blocks vary fastest: a thread's next item often keeps its copy of the weights
      const int64_t at = it / nBlocks;
      const int nb = static_cast<int>(it % nBlocks);
      const int group = static_cast<int>(at % groups);
      const int r0 = static_cast<int>((at / groups) % (p.R / perItem)) * perItem;
      const int b = static_cast<int>(at / groups / (p.R / perItem));
      const int first = group * kGroup, count = std::min(kGroup, chunks - first);
      const int c0 = first * CW, span = std::min(count * CW, p.C - c0);
      for (int r = r0; r < r0 + perItem; r++) {
        const int64_t tile = (static_cast<int64_t>(b) * p.R + r) * groups + group;
        if (tile != last) {
          const int bw = p.Bw == 1 ? 0 : b;
          auto source = [&](int i, int j) {
            return (((static_cast<int64_t>(j) * p.Bw + bw) * p.R + r) * p.rows + i) * p.C + c0;
          };
          // ask for every row first, so that their fetches overlap
          for (int i = 0; i < p.rows && !p.unit; i++)
            for (int j = 0; j < J; j++)
              for (int e = 0; e < span; e += 16) {
                __builtin_prefetch(p.weights + source(i, j) + e);
                if (p.squares) __builtin_prefetch(p.squares + source(i, j) + e);
              }
          if (p.unit) {
            // a written operand: its cells are written as they are copied
            const int64_t sliceStride = static_cast<int64_t>(p.Bw) * p.R * p.rows * p.C;
            for (int i = 0; i < p.rows; i++)
              for (int c = 0; c < count; c++)
                for (int h = 0; h < CW / kLanes; h++) {
                  // columns past the operand's are zero-filled (width 0 writes only zeros)
                  const int lo = c * CW + h * kLanes;
                  const int64_t at = ((static_cast<int64_t>(bw) * p.R + r) * p.rows + i) * p.C + c0 + lo;
                  const size_t to = c * chunkSize + static_cast<size_t>(i) * J * CW + h * kLanes;
                  writeRow<J>(p, p.unit + at, at, sliceStride, std::max(0, std::min(kLanes, span - lo)), w.data() + to,
                              Squares ? s.data() + to : nullptr, CW);
                }
          }
          for (int i = 0; i < p.rows && !p.unit; i++)
            for (int j = 0; j < J; j++)
              for (int c = 0; c < count; c++) {
                const int lo = c * CW, width = std::min(CW, span - lo);
                const size_t to = c * chunkSize + (static_cast<size_t>(i) * J + j) * CW;
                // float32 products, as the graph version's Mul computes them
                scaledCopy(w.data() + to, p.weights + source(i, j) + lo, width, CW, p.weightScale);
                if (p.squares) scaledCopy(s.data() + to, p.squares + source(i, j) + lo, width, CW, p.squareScale);
              }
          last = tile;
        }
        for (int c = 0; c < count; c++)
          item<J, H, Squares>(p, b, r, c0 + c * CW, nb * nBlock, std::min(p.N, (nb + 1) * nBlock),
                              w.data() + c * chunkSize, Squares ? s.data() + c * chunkSize : w.data(), sets, xi.data());
      }
    }
  };
  pool().run(static_cast<int>(std::min<int64_t>(threads, items)), worker);
}

void dispatch(Problem& p, int threads) {
  buildMasks(p, threads);
  const bool squares = p.unit ? p.write.squares : p.squares != nullptr;
#define XBAR_SLICES(J) \
  case J:              \
    return squares ? run<J, 1, true>(p, threads) : run<J, 4, false>(p, threads);
  switch (p.J) {
    XBAR_SLICES(1)
    XBAR_SLICES(2)
    XBAR_SLICES(3)
    XBAR_SLICES(4)
    XBAR_SLICES(8)
  }
#undef XBAR_SLICES
}

inline bool layoutValid(const philox::Layout& l) {
  return l.perSample >= 1 && l.along % l.perSample == 0 && l.outer >= 0 && l.inner >= 0 && l.columns >= 0;
}

// src/util/philox.ts fillNoise of a valid layout into out, rows shared among the threads.
void fillNoise(const philox::Layout& l, uint32_t seed, float std, int64_t firstSample, float* out, int threads) {
  const int64_t rows = l.outer * l.along * l.inner;
  // rows in blocks of at least 64k values, so that a small leaf runs on the caller's thread alone
  const int64_t block = std::max<int64_t>(1, 65536 / std::max<int64_t>(1, l.columns));
  const int64_t blocks = (rows + block - 1) / block;
  std::atomic<int64_t> next{0};
  const std::function<void()> worker = [&]() {
    for (int64_t b; (b = next.fetch_add(1)) < blocks;)
      for (int64_t row = b * block; row < std::min(rows, (b + 1) * block); row++) {
        const int64_t i = row % l.inner, a = (row / l.inner) % l.along, o = row / l.inner / l.along;
        philox::fillRow(l, o, a, i, seed, std, firstSample, out + row * l.columns);
      }
  };
  pool().run(static_cast<int>(std::min<int64_t>(std::max(1, threads), blocks)), worker);
}

// ---- N-API glue ----
#ifndef __wasm__

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, nullptr, "xbar native: N-API call failed: " #call); \
      return nullptr;                                                    \
    }                                                                    \
  } while (0)

// The data of a Float32Array of `want` values, or null with a RangeError thrown that names `what`.
float* floatsOf(napi_env env, napi_value v, const std::string& what, size_t want) {
  bool is = false;
  napi_typedarray_type type;
  void* raw = nullptr;
  napi_value buffer;
  size_t length = 0, offset;
  if (napi_is_typedarray(env, v, &is) == napi_ok && is &&
      napi_get_typedarray_info(env, v, &type, &length, &raw, &buffer, &offset) == napi_ok &&
      type == napi_float32_array && length == want)
    return static_cast<float*>(raw);
  napi_throw_range_error(
      env, nullptr, ("xbar native: " + what + " must be a Float32Array of " + std::to_string(want) + " values").c_str());
  return nullptr;
}

napi_value Products(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  napi_value o = argv[0];
  auto get = [&](const char* name) {
    napi_value v = nullptr;
    napi_get_named_property(env, o, name, &v);
    return v;
  };
  auto pending = [&]() {
    bool is = false;
    napi_is_exception_pending(env, &is);
    return is;
  };
  auto integer = [&](const char* name) {
    int32_t v = 0;
    napi_get_value_int32(env, get(name), &v);
    return v;
  };
  auto array = [&](const char* name, size_t want, bool optional) -> const float* {
    // after a failed argument N-API calls fail too: check nothing more
    if (pending()) return nullptr;
    napi_value v = get(name);
    napi_valuetype t;
    napi_typeof(env, v, &t);
    if (optional && (t == napi_null || t == napi_undefined)) return nullptr;
    return floatsOf(env, v, std::string("'") + name + "'", want);
  };
  Problem p{};
  p.B = integer("B"), p.Bw = integer("Bw"), p.R = integer("R"), p.N = integer("N");
  p.rows = integer("rows"), p.C = integer("C"), p.J = integer("J");
  p.planes = integer("planes"), p.levels = integer("levels");
  auto number = [&](const char* name) {
    double v = 0;
    napi_get_value_double(env, get(name), &v);
    return static_cast<float>(v);
  };
  p.weightScale = number("weightScale"), p.squareScale = number("squareScale");
  const int threads = std::max(1, integer("threads"));
  if (p.J != 1 && p.J != 2 && p.J != 3 && p.J != 4 && p.J != 8) {
    napi_throw_range_error(env, nullptr, "xbar native: slices J must be 1, 2, 3, 4 or 8");
    return nullptr;
  }
  if (p.planes < 1 || p.planes > 31) {
    napi_throw_range_error(env, nullptr, "xbar native: planes must be 1..31 (bit-serial inputs)");
    return nullptr;
  }
  if (p.Bw != 1 && p.Bw != p.B) {
    napi_throw_range_error(env, nullptr, "xbar native: weight batch Bw must be 1 or B");
    return nullptr;
  }
  const size_t in = static_cast<size_t>(p.B) * p.R * p.N * p.rows;
  const size_t wn = static_cast<size_t>(p.J) * p.Bw * p.R * p.rows * p.C;
  const int planes = p.planes;
  p.inputs = array("inputs", in, true);
  p.codes = array("codes", in, p.inputs != nullptr);
  if (p.inputs) p.dacLevels = number("dacLevels");
  p.unit = array("unit", wn / p.J, true);
  p.weights = array("weights", wn, p.unit != nullptr);
  p.squares = array("squares", wn, true);
  if (p.unit) {
    // the written operand's cells (see Problem::Write)
    Problem::Write& w = p.write;
    const int32_t kind = integer("writeKind");
    if (!isWriteKind(kind)) {
      napi_throw_range_error(env, nullptr, (std::string("xbar native: writeKind must be one of ") + kWriteKinds).c_str());
      return nullptr;
    }
    w.kind = static_cast<WriteKind>(kind);
    w.levels = number("cellLevels"), w.base = number("cellBase");
    for (int j = 0; j <= p.J; j++) w.power[j] = static_cast<float>(std::pow(static_cast<double>(w.base), -j));
    if (w.levels == 0 && p.J != 1) {
      napi_throw_range_error(env, nullptr, "xbar native: analog cells (cellLevels 0) have one slice, J = 1");
      return nullptr;
    }
    w.gMin = number("gMin"), w.gMax = number("gMax"), w.dG = number("dG"), w.dGSquared = number("dGSquared");
    w.noise = number("writeNoiseScale");
    w.c0 = kPcmProgC0, w.c1 = kPcmProgC1, w.c2 = kPcmProgC2;
    bool squares = false;
    napi_get_value_bool(env, get("writeSquares"), &squares);
    w.squares = squares;
    if (w.kind != WriteKind::none) {
      napi_value list = get("writeNoise");
      bool isArray = false;
      uint32_t len = 0;
      napi_is_array(env, list, &isArray);
      if (isArray) napi_get_array_length(env, list, &len);
      if (len != 2) {
        napi_throw_range_error(env, nullptr, "xbar native: 'writeNoise' needs two arrays (the G+ and the G- devices)");
        return nullptr;
      }
      for (uint32_t k = 0; k < 2; k++) {
        napi_value e;
        napi_get_element(env, list, k, &e);
        w.xi[k] = floatsOf(env, e, "each of 'writeNoise'", wn);
        if (!w.xi[k]) return nullptr;
      }
    }
  }
  p.coef = array("coef", static_cast<size_t>(planes) * p.J, false);
  if (pending()) return nullptr;
  {
    // the noise's seeds per plane (a Uint32Array), or null: no read or output noise
    napi_value seeds = get("noiseSeeds");
    bool is = false;
    napi_typedarray_type type;
    void* raw = nullptr;
    napi_value buffer;
    size_t length = 0, offset;
    napi_valuetype t;
    napi_typeof(env, seeds, &t);
    if (t != napi_null && t != napi_undefined) {
      if (!(napi_is_typedarray(env, seeds, &is) == napi_ok && is &&
            napi_get_typedarray_info(env, seeds, &type, &length, &raw, &buffer, &offset) == napi_ok &&
            type == napi_uint32_array && static_cast<int>(length) == planes)) {
        napi_throw_range_error(env, nullptr, "xbar native: 'noiseSeeds' must be a Uint32Array of one seed per plane, or null");
        return nullptr;
      }
      const uint32_t* s = static_cast<const uint32_t*>(raw);
      p.noiseSeeds.assign(s, s + length);
    }
    p.samples = std::max(1, integer("samples"));
    bool along = false;
    napi_get_value_bool(env, get("samplesAlongB"), &along);
    p.samplesAlongB = along;
    double first = 0;
    napi_get_value_double(env, get("firstSample"), &first);
    p.firstSample = static_cast<int64_t>(first);
    p.outSigma = number("outSigma");
    p.outVar = p.outSigma * p.outSigma;
    if ((p.samplesAlongB ? p.B : p.N) % p.samples != 0) {
      napi_throw_range_error(env, nullptr, "xbar native: 'samples' must divide B (samplesAlongB) or N");
      return nullptr;
    }
  }
  p.adcGain = array("adcGain", static_cast<size_t>(p.R) * p.C, true);
  p.gainBlock = std::max(1, integer("gainBlock"));
  bool sumTiles = false;
  napi_get_value_bool(env, get("sumTiles"), &sumTiles);
  p.sumTiles = sumTiles;
  p.gain = array("gain", static_cast<size_t>(p.B) * p.R * p.N * ((p.C + p.gainBlock - 1) / p.gainBlock), true);
  p.gainBatches = std::max(1, integer("gainBatches"));
  if (p.gainBatches != 1 && p.gainBatches != p.B) {
    napi_throw_range_error(env, nullptr, "xbar native: gainBatches must be 1 or B");
    return nullptr;
  }
  p.gainScale = p.inputs ? array("gainScale", static_cast<size_t>(p.gainBatches) * p.R * ((p.C + p.gainBlock - 1) / p.gainBlock), true) : nullptr;
  if (p.gainScale && p.gain) {
    napi_throw_range_error(env, nullptr, "xbar native: pass 'gain' or 'gainScale', not both");
    return nullptr;
  }
  if (pending()) return nullptr;
  const size_t outN = static_cast<size_t>(p.B) * (p.sumTiles ? 1 : p.R) * p.N * p.C;
  napi_value result = get("out");
  napi_valuetype outType;
  napi_typeof(env, result, &outType);
  if (outType == napi_null || outType == napi_undefined) {
    // a fresh (zero-filled) buffer; a caller that runs the same product again passes it back
    napi_value buffer;
    void* data;
    CHECK(napi_create_arraybuffer(env, outN * sizeof(float), &data, &buffer));
    CHECK(napi_create_typedarray(env, napi_float32_array, outN, buffer, 0, &result));
    p.out = static_cast<float*>(data);
  } else {
    p.out = floatsOf(env, result, "'out'", outN);
    if (!p.out) return nullptr;
  }
  dispatch(p, threads);
  return result;
}

// fillNoise({ out, outer, along, perSample, inner, columns, seed, std, firstSample, threads }):
// src/util/philox.ts fillNoise (fillNoise above).
napi_value FillNoise(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr));
  auto number = [&](const char* name) {
    napi_value v = nullptr;
    double d = 0;
    napi_get_named_property(env, argv[0], name, &v);
    napi_get_value_double(env, v, &d);
    return d;
  };
  const philox::Layout l{static_cast<int64_t>(number("outer")), static_cast<int64_t>(number("along")),
                         static_cast<int64_t>(number("perSample")), static_cast<int64_t>(number("inner")),
                         static_cast<int64_t>(number("columns"))};
  if (!layoutValid(l)) {
    napi_throw_range_error(env, nullptr, "xbar native: fillNoise: 'along' must be a multiple of 'perSample' ≥ 1");
    return nullptr;
  }
  napi_value outValue = nullptr;
  napi_get_named_property(env, argv[0], "out", &outValue);
  float* out = floatsOf(env, outValue, "fillNoise's 'out'", static_cast<size_t>(l.outer * l.along * l.inner * l.columns));
  if (!out) return nullptr;
  fillNoise(l, static_cast<uint32_t>(number("seed")), static_cast<float>(number("std")),
            static_cast<int64_t>(number("firstSample")), out, static_cast<int>(std::max<double>(1, number("threads"))));
  return nullptr;
}

napi_value Init(napi_env env, napi_value exports) {
  napi_value fn;
  napi_create_function(env, "crossbarProducts", NAPI_AUTO_LENGTH, Products, nullptr, &fn);
  napi_set_named_property(env, exports, "crossbarProducts", fn);
  napi_create_function(env, "fillNoise", NAPI_AUTO_LENGTH, FillNoise, nullptr, &fn);
  napi_set_named_property(env, exports, "fillNoise", fn);
  napi_value constants;
  napi_create_string_utf8(env, kNativeConstants, NAPI_AUTO_LENGTH, &constants);
  napi_set_named_property(env, exports, "constants", constants);
  return exports;
}
#endif

}  // namespace

#ifndef __wasm__
NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
#endif
