// The native kernel without Node: reads one crossbarProducts call's arguments from a file and
// writes its outputs, so that a build for another CPU (linux-arm64, run under qemu-aarch64 where
// Node for it is not at hand) can be compared with the Node addon's outputs
// (test/runtime/prebuilds.test.ts writes the file). Built static by scripts/build-native.mjs.
//
//   xbar_kernel_harness ARGS OUT
//
// ARGS: "XBK1", then fields until the end, each: u32 name length, the name, u32 kind, and
// kind 0: a number (f64); 1: a Float32Array (u32 length, the floats); 2: a list of them (u32
// count, then each as kind 1); 3: a Uint32Array (u32 length, the words). Names and meanings are crossbarProducts' (src/runtime/native.ts);
// a field left out is null, 0 or false. OUT: the float32 outputs, little-endian.

// The kernel's own declarations of N-API are not needed here: the addon's entry point is left out.
#include <node_api.h>
#undef NAPI_MODULE
#define NAPI_MODULE(name, init)

#include "crossbar_products.cc"

#include <cstdio>
#include <map>

namespace {

struct Field {
  double number = 0;
  std::vector<std::vector<float>> arrays;  // kind 1: one; kind 2: the list
  bool isList = false;
  std::vector<uint32_t> words;  // kind 3
};

bool readAll(const char* path, std::vector<char>& data) {
  FILE* f = std::fopen(path, "rb");
  if (!f) return false;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, f)) > 0;) data.insert(data.end(), buffer, buffer + n);
  std::fclose(f);
  return true;
}

bool parse(const std::vector<char>& data, std::map<std::string, Field>& fields) {
  size_t at = 4;
  if (data.size() < 4 || std::memcmp(data.data(), "XBK1", 4) != 0) return false;
  auto u32 = [&](uint32_t& v) {
    if (at + 4 > data.size()) return false;
    std::memcpy(&v, data.data() + at, 4);
    at += 4;
    return true;
  };
  auto floats = [&](std::vector<float>& v) {
    uint32_t n;
    if (!u32(n) || at + 4ull * n > data.size()) return false;
    v.resize(n);
    std::memcpy(v.data(), data.data() + at, 4ull * n);
    at += 4ull * n;
    return true;
  };
  while (at < data.size()) {
    uint32_t length, kind;
    if (!u32(length) || at + length > data.size()) return false;
    Field& f = fields[std::string(data.data() + at, length)];
    at += length;
    if (!u32(kind)) return false;
    if (kind == 0) {
      if (at + 8 > data.size()) return false;
      std::memcpy(&f.number, data.data() + at, 8);
      at += 8;
    } else if (kind == 1) {
      f.arrays.resize(1);
      if (!floats(f.arrays[0])) return false;
    } else if (kind == 2) {
      uint32_t count;
      if (!u32(count)) return false;
      f.isList = true;
      f.arrays.resize(count);
      for (auto& a : f.arrays)
        if (!floats(a)) return false;
    } else if (kind == 3) {
      uint32_t n;
      if (!u32(n) || at + 4ull * n > data.size()) return false;
      f.words.resize(n);
      std::memcpy(f.words.data(), data.data() + at, 4ull * n);
      at += 4ull * n;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ARGS OUT\n", argv[0]);
    return 2;
  }
  std::vector<char> data;
  std::map<std::string, Field> fields;
  if (!readAll(argv[1], data) || !parse(data, fields)) {
    std::fprintf(stderr, "%s: not a kernel arguments file (XBK1)\n", argv[1]);
    return 1;
  }
  auto number = [&](const char* name) { return fields.count(name) ? fields[name].number : 0.0; };
  auto array = [&](const char* name) -> const float* {
    return fields.count(name) && !fields[name].isList && !fields[name].arrays.empty() ? fields[name].arrays[0].data()
                                                                                        : nullptr;
  };
  auto list = [&](const char* name) {
    std::vector<const float*> l;
    if (fields.count(name))
      for (auto& a : fields[name].arrays) l.push_back(a.data());
    return l;
  };
  Problem p{};
  p.B = number("B"), p.Bw = number("Bw"), p.R = number("R"), p.N = number("N");
  p.rows = number("rows"), p.C = number("C"), p.J = number("J");
  p.planes = number("planes"), p.levels = number("levels");
  p.weightScale = number("weightScale"), p.squareScale = number("squareScale");
  p.codes = array("codes"), p.inputs = array("inputs"), p.dacLevels = number("dacLevels");
  p.weights = array("weights"), p.squares = array("squares"), p.unit = array("unit");
  if (p.unit) {
    Problem::Write& w = p.write;
    w.kind = static_cast<WriteKind>(static_cast<int32_t>(number("writeKind")));
    w.levels = number("cellLevels"), w.base = number("cellBase");
    for (int j = 0; j <= p.J; j++) w.power[j] = static_cast<float>(std::pow(static_cast<double>(w.base), -j));
    w.gMin = number("gMin"), w.gMax = number("gMax"), w.dG = number("dG"), w.dGSquared = number("dGSquared");
    w.noise = number("writeNoiseScale");
    w.c0 = kPcmProgC0, w.c1 = kPcmProgC1, w.c2 = kPcmProgC2;
    w.squares = number("writeSquares") != 0;
    const auto xi = list("writeNoise");
    if (xi.size() == 2) w.xi[0] = xi[0], w.xi[1] = xi[1];
  }
  p.coef = array("coef");
  if (fields.count("noiseSeeds")) p.noiseSeeds = fields["noiseSeeds"].words;
  p.samples = std::max(1, static_cast<int>(number("samples")));
  p.samplesAlongB = number("samplesAlongB") != 0;
  p.firstSample = static_cast<int64_t>(number("firstSample"));
  p.outSigma = number("outSigma");
  p.outVar = p.outSigma * p.outSigma;
  p.adcGain = array("adcGain");
  p.gainBlock = std::max(1, static_cast<int>(number("gainBlock")));
  p.sumTiles = number("sumTiles") != 0;
  p.gain = array("gain"), p.gainScale = array("gainScale");
  p.gainBatches = std::max(1, static_cast<int>(number("gainBatches")));
  std::vector<float> out(static_cast<size_t>(p.B) * (p.sumTiles ? 1 : p.R) * p.N * p.C);
  p.out = out.data();
  dispatch(p, std::max(1, static_cast<int>(number("threads"))));
  FILE* f = std::fopen(argv[2], "wb");
  if (!f || std::fwrite(out.data(), sizeof(float), out.size(), f) != out.size() || std::fclose(f) != 0) {
    std::fprintf(stderr, "%s: cannot write\n", argv[2]);
    return 1;
  }
  return 0;
}
