// The WebAssembly build of the fused crossbar product: crossbar_products.cc compiled for wasm32
// with SIMD128 (scripts/build-wasm.mjs), loaded by src/runtime/wasm.ts. There is no libc or
// N-API here, so this file gives the kernel what it takes from them: a heap, a Pool whose
// threads are other instances of this module on the same shared memory (Node worker_threads,
// started by the loader), and exports that take a product's arguments as one struct laid out by
// the loader in linear memory.
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>

extern "C" unsigned char __heap_base;

namespace {

// ---- heap ----
// Size classes of a quarter power of two (at most 25 % unused), one free list each, behind one
// lock: the kernel allocates a few buffers per call (masks, per-thread tile copies), the loader
// one arena per call, and the same sizes come back at every forward.
namespace heap {
constexpr size_t kHeader = 16;  // class and size; keeps blocks 16-byte aligned
constexpr size_t kLargest = size_t(3) << 30;
std::atomic<int32_t> lock{0};
void* lists[128];
uintptr_t top = 0;

// → the class of a block of n bytes (header included), and its size
inline int classOf(size_t n, size_t& size) {
  if (n <= 64) {
    size = 64;
    return 0;
  }
  const int b = 31 - __builtin_clz(static_cast<uint32_t>(n - 1));  // 2^b < n ≤ 2^(b+1), b ≥ 6
  const size_t step = size_t(1) << (b - 2);
  const size_t k = (n + step - 1) / step;  // 5..8 quarters
  size = k * step;
  return (b - 5) * 4 + static_cast<int>(k - 4);
}

struct Locked {
  Locked() {
    for (int32_t free = 0; !lock.compare_exchange_weak(free, 1, std::memory_order_acquire); free = 0) {
    }
  }
  ~Locked() { lock.store(0, std::memory_order_release); }
};

void* allocate(size_t n) {
  if (n > kLargest) return nullptr;
  size_t size;
  const int c = classOf(n + kHeader, size);
  Locked held;
  uintptr_t block;
  if (lists[c]) {
    block = reinterpret_cast<uintptr_t>(lists[c]);
    lists[c] = *reinterpret_cast<void**>(block);
  } else {
    if (!top) top = (reinterpret_cast<uintptr_t>(&__heap_base) + 15) & ~uintptr_t(15);
    const uint64_t end = static_cast<uint64_t>(top) + size;
    const uint64_t have = static_cast<uint64_t>(__builtin_wasm_memory_size(0)) << 16;
    if (end > have && __builtin_wasm_memory_grow(0, static_cast<size_t>((end - have + 65535) >> 16)) == SIZE_MAX)
      return nullptr;
    block = top;
    top += size;
  }
  reinterpret_cast<uint32_t*>(block)[0] = static_cast<uint32_t>(c);
  reinterpret_cast<uint32_t*>(block)[1] = static_cast<uint32_t>(size);
  return reinterpret_cast<void*>(block + kHeader);
}

void release(void* p) {
  if (!p) return;
  const uintptr_t block = reinterpret_cast<uintptr_t>(p) - kHeader;
  const uint32_t c = reinterpret_cast<uint32_t*>(block)[0], size = reinterpret_cast<uint32_t*>(block)[1];
  Locked held;
  if (block + size == top) {
    top = block;  // the last block: its memory is free for any size
    return;
  }
  *reinterpret_cast<void**>(block) = lists[c];
  lists[c] = reinterpret_cast<void*>(block);
}
}  // namespace heap

// ---- threads ----
// `run(n, f)` runs f on the calling thread and on up to n − 1 worker instances that join while
// it runs: f takes its work from a shared counter, so however many join, the work is done once.
// Workers that never started (or joined late) only make it slower, never stall it. Waiting is
// memory.atomic.wait32, which Node allows on its main thread.
class Pool {
 public:
  void run(int n, const std::function<void()>& f) {
    const int helpers = std::min(n - 1, workers_.load());
    if (helpers <= 0) {
      f();
      return;
    }
    task_ = &f;
    done_.store(0);
    slots_.store(helpers);
    generation_.fetch_add(1);
    __builtin_wasm_memory_atomic_notify(reinterpret_cast<int32_t*>(&generation_), UINT32_MAX);
    f();
    // no more joining; wait for those that did
    const int claimed = helpers - slots_.exchange(0);
    for (int32_t d; (d = done_.load()) < claimed;)
      __builtin_wasm_memory_atomic_wait32(reinterpret_cast<int32_t*>(&done_), d, -1);
    task_ = nullptr;
  }

  // A worker instance's loop: never returns.
  void serve() {
    workers_.fetch_add(1);
    int32_t seen = generation_.load();
    for (;;) {
      for (int32_t s = slots_.load(); s > 0;)
        if (slots_.compare_exchange_weak(s, s - 1)) {
          (*task_)();
          finish();
          break;
        }
      __builtin_wasm_memory_atomic_wait32(reinterpret_cast<int32_t*>(&generation_), seen, -1);
      seen = generation_.load();
    }
  }

  // A worker that trapped in a task: counted as done, and the run reports the failure.
  void abandon() {
    failed_.store(1);
    finish();
  }

  bool failed() { return failed_.exchange(0) != 0; }

  int workers() { return workers_.load(); }

 private:
  void finish() {
    done_.fetch_add(1);
    __builtin_wasm_memory_atomic_notify(reinterpret_cast<int32_t*>(&done_), 1);
  }
  std::atomic<int32_t> generation_{0}, slots_{0}, done_{0}, workers_{0}, failed_{0};
  const std::function<void()>* task_ = nullptr;
};

Pool thePool;  // constant-initialised: no constructor to run
Pool& pool() { return thePool; }

}  // namespace

void* operator new(size_t n) {
  void* p = heap::allocate(n);
  if (!p) __builtin_trap();  // out of wasm32 memory
  return p;
}
void* operator new[](size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { heap::release(p); }
void operator delete[](void* p) noexcept { heap::release(p); }
void operator delete(void* p, size_t) noexcept { heap::release(p); }
void operator delete[](void* p, size_t) noexcept { heap::release(p); }

// what the standard library headers call on errors that cannot happen here (no exceptions)
namespace std {
void __throw_bad_function_call() { __builtin_trap(); }
void __throw_length_error(const char*) { __builtin_trap(); }
void __throw_bad_alloc() { __builtin_trap(); }
void __throw_bad_array_new_length() { __builtin_trap(); }
}  // namespace std

#include "crossbar_products.cc"

namespace {

// One product's arguments, as src/runtime/wasm.ts lays them out (32-bit words, in this order;
// pointers into linear memory, 0 for none). See CrossbarProductsArgs there.
struct Args {
  int32_t B, Bw, R, N, rows, C, J, planes, levels, threads;
  float weightScale, squareScale, dacLevels;
  const float *codes, *inputs, *weights, *squares, *unit, *coef, *gain, *gainScale;
  int32_t gainBatches, gainBlock, sumTiles;
  float* out;
  const uint32_t* noiseSeeds;  // planes seeds, or null: no read or output noise
  int32_t samples, samplesAlongB;
  uint32_t firstSample;
  float outSigma;
  // a written operand (unit ≠ null)
  int32_t writeKind;
  float cellLevels, cellBase, gMin, gMax, dG, dGSquared, writeNoiseScale;
  int32_t writeSquares;
  const float *writeNoise0, *writeNoise1;
  const float* adcGain;  // [R, C], or null
};
static_assert(sizeof(Args) == 42 * 4, "Args is laid out word by word by src/runtime/wasm.ts");

// "xbar wasm: writeKind must be one of " + kWriteKinds
const char* writeKindsError() {
  static char message[256];
  if (!message[0]) {
    const char* parts[] = {"xbar wasm: writeKind must be one of ", kWriteKinds};
    size_t at = 0;
    for (const char* part : parts)
      for (; *part && at + 1 < sizeof message; part++) message[at++] = *part;
  }
  return message;
}

}  // namespace

extern "C" {

__attribute__((export_name("xbar_malloc"))) void* xbarMalloc(size_t n) { return heap::allocate(n); }
__attribute__((export_name("xbar_free"))) void xbarFree(void* p) { heap::release(p); }
__attribute__((export_name("xbar_constants"))) const char* xbarConstants() { return kNativeConstants; }
__attribute__((export_name("xbar_worker"))) void xbarWorker() { pool().serve(); }
__attribute__((export_name("xbar_workers"))) int xbarWorkers() { return pool().workers(); }
__attribute__((export_name("xbar_worker_abandon"))) void xbarWorkerAbandon() { pool().abandon(); }

// The product; → null, or an error message (the sizes of the arrays the loader checked).
__attribute__((export_name("xbar_products"))) const char* xbarProducts(Args* a) {
  Problem p{};
  p.B = a->B, p.Bw = a->Bw, p.R = a->R, p.N = a->N, p.rows = a->rows, p.C = a->C, p.J = a->J;
  p.planes = a->planes, p.levels = a->levels;
  p.weightScale = a->weightScale, p.squareScale = a->squareScale;
  if (p.J != 1 && p.J != 2 && p.J != 3 && p.J != 4 && p.J != 8) return "xbar wasm: slices J must be 1, 2, 3, 4 or 8";
  if (p.planes < 1 || p.planes > 31) return "xbar wasm: planes must be 1..31 (bit-serial inputs)";
  if (p.Bw != 1 && p.Bw != p.B) return "xbar wasm: weight batch Bw must be 1 or B";
  p.codes = a->codes, p.inputs = a->inputs, p.dacLevels = a->dacLevels;
  p.weights = a->weights, p.squares = a->squares, p.unit = a->unit, p.coef = a->coef;
  if (p.unit) {
    Problem::Write& w = p.write;
    if (!isWriteKind(a->writeKind)) return writeKindsError();
    w.kind = static_cast<WriteKind>(a->writeKind);
    w.levels = a->cellLevels, w.base = a->cellBase;
    // base^−j exactly: base is a power of two
    float power = 1.0f;
    for (int j = 0; j <= p.J; j++, power /= w.base) w.power[j] = power;
    if (w.levels == 0 && p.J != 1) return "xbar wasm: analog cells (cellLevels 0) have one slice, J = 1";
    w.gMin = a->gMin, w.gMax = a->gMax, w.dG = a->dG, w.dGSquared = a->dGSquared;
    w.noise = a->writeNoiseScale;
    w.c0 = kPcmProgC0, w.c1 = kPcmProgC1, w.c2 = kPcmProgC2;
    w.squares = a->writeSquares != 0;
    w.xi[0] = a->writeNoise0, w.xi[1] = a->writeNoise1;
    if (w.kind != WriteKind::none && (!w.xi[0] || !w.xi[1]))
      return "xbar wasm: 'writeNoise' needs two arrays (the G+ and the G- devices)";
  }
  if (a->noiseSeeds) p.noiseSeeds.assign(a->noiseSeeds, a->noiseSeeds + p.planes);
  p.samples = std::max(1, a->samples);
  p.samplesAlongB = a->samplesAlongB != 0;
  p.firstSample = a->firstSample;
  p.outSigma = a->outSigma;
  p.outVar = p.outSigma * p.outSigma;
  if ((p.samplesAlongB ? p.B : p.N) % p.samples != 0) return "xbar wasm: 'samples' must divide B (samplesAlongB) or N";
  p.adcGain = a->adcGain;
  p.gainBlock = std::max(1, a->gainBlock);
  p.sumTiles = a->sumTiles != 0;
  p.gain = a->gain;
  p.gainBatches = std::max(1, a->gainBatches);
  if (p.gainBatches != 1 && p.gainBatches != p.B) return "xbar wasm: gainBatches must be 1 or B";
  p.gainScale = p.inputs ? a->gainScale : nullptr;
  if (p.gainScale && p.gain) return "xbar wasm: pass 'gain' or 'gainScale', not both";
  p.out = a->out;
  dispatch(p, std::max(1, a->threads));
  if (pool().failed()) return "xbar wasm: a worker thread failed during the product";
  return nullptr;
}

// src/util/philox.ts fillNoise into out (outer·along·inner·columns floats), rows shared among
// the threads; → null, or an error message.
__attribute__((export_name("xbar_fill_noise"))) const char* xbarFillNoise(float* out, int32_t outer, int32_t along,
                                                                          int32_t perSample, int32_t inner,
                                                                          int32_t columns, uint32_t seed, float std,
                                                                          uint32_t firstSample, int32_t threads) {
  const philox::Layout l{outer, along, perSample, inner, columns};
  if (!layoutValid(l)) return "xbar wasm: fillNoise: 'along' must be a multiple of 'perSample' ≥ 1";
  fillNoise(l, seed, std, firstSample, out, threads);
  if (pool().failed()) return "xbar wasm: a worker thread failed while filling noise";
  return nullptr;
}

}  // extern "C"
