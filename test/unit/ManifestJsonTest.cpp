//===- ManifestJsonTest.cpp - the manifest's JSON in both directions ------===//
//
// fromJson(toJson(m)) == m over random manifests, toJson stable under a
// second round trip, and located one-line errors for malformed manifests.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Common/Manifest.h"

#include <gtest/gtest.h>

#include <random>

using namespace deltaflow::manifest;

namespace {

struct Gen {
  std::mt19937_64 rng;
  explicit Gen(uint64_t seed) : rng(seed) {}
  int64_t num(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  }
  bool coin() { return num(0, 1) == 1; }
  std::string name(const char *prefix) {
    // Names with characters JSON must escape, too.
    static const char *odd[] = {"", "_x", " sp", "\"q\"", "\\b", "é", "\t"};
    return prefix + std::to_string(num(0, 999)) + odd[num(0, 6)];
  }
  double real() {
    // Values that a decimal round trip could lose: nlohmann prints 17 digits.
    return std::ldexp(double(num(1, (1LL << 53) - 1)), int(num(-60, 10)));
  }
  Dim dim(const std::vector<std::string> &inputs) {
    switch (num(0, 3)) {
    case 0:
      return Dim::fixed(num(0, 1 << 20));
    case 1:
      return Dim();
    default: {
      if (inputs.empty())
        return Dim::fixed(num(1, 9));
      Dim d = Dim::of(inputs[size_t(num(0, int64_t(inputs.size()) - 1))],
                      int(num(0, 3)));
      if (coin()) {
        d.div = num(1, 512);
        d.add = num(0, 1000);
      }
      return d;
    }
    }
  }
  TensorSpec tensor(const std::vector<std::string> &inputs, bool withRole) {
    TensorSpec t;
    t.name = name("t");
    t.dtype = DType(num(0, 3));
    for (int64_t i = num(0, 4); i > 0; --i)
      t.shape.push_back(dim(inputs));
    if (withRole)
      t.role = Role(num(0, 5));
    return t;
  }
  std::vector<Variant> variants(int64_t n) {
    std::vector<Variant> v;
    for (int64_t i = 0; i < n; ++i) {
      v.push_back({name("sym"), coin() ? num(1, 64) : -1, std::nullopt});
      if (coin())
        v.back().ptx = PtxLaunch{name("fn"), int(num(1, 1024)), num(0, 1 << 18),
                                 num(1, 256), int(num(50, 120)),
                                 coin() ? (coin() ? "decode-v1" : "token-select-v4") : ""};
    }
    return v;
  }
  AttentionParams attention() {
    AttentionParams a;
    a.hq = num(1, 64);
    a.hkv = num(1, 64);
    a.d = num(1, 256);
    a.dv = num(1, 256);
    a.scale = real();
    a.causal = coin();
    a.withLse = coin();
    if (coin())
      a.offset = num(0, 1 << 20);
    a.kvDtype = coin() ? DType::Float16 : DType::Float32;
    if (coin())
      a.dtype = coin() ? DType::BFloat16 : DType::Float16;
    return a;
  }
  /// A kernel as the compiler writes it: only its kind's parameters.
  KernelSpec kernel(size_t index) {
    KernelSpec k;
    k.name = name("k");
    k.kind = KernelKind(num(0, 6));
    k.loc = name("file.mlir:");
    for (int64_t i = num(0, 4); i > 0; --i)
      k.inputs.push_back(name("b"));
    for (int64_t i = num(0, 2); i > 0; --i)
      k.outputs.push_back(name("b"));
    switch (k.kind) {
    case KernelKind::SparseAttention:
      k.sparse = {num(0, 256), num(0, 4096), num(1, 512), num(0, 4096)};
      if (coin()) {
        while (k.inputs.size() < 3)
          k.inputs.push_back(name("b"));
        k.denseFallback = DenseFallback{num(0, 9000), variants(num(1, 3))};
      }
      [[fallthrough]];
    case KernelKind::Attention:
      k.attention = attention();
      break;
    case KernelKind::DenseRows:
      k.attention = attention();
      k.stride = num(1, 256);
      break;
    case KernelKind::DeltaCorrect:
      k.stride = num(1, 256);
      break;
    case KernelKind::Select:
      k.select.policy = name("policy");
      k.select.slots = num(0, 4096);
      k.select.sinks = num(0, 256);
      k.select.window = num(0, 4096);
      k.select.chunk = num(1, 512);
      k.select.perKvHead = coin();
      for (int64_t i = num(0, 4); i > 0; --i)
        k.select.knobs[name("knob")] = coin() ? real() : double(num(0, 99));
      if (coin())
        k.select.offset = num(0, 1 << 20);
      k.select.kDtype = coin() ? DType::Float16 : DType::Float32;
      break;
    case KernelKind::Graph:
      k.ops = "matmul add " + name("op");
      if (coin()) {
        if (k.outputs.empty())
          k.outputs.push_back(name("b"));
        k.rows = RowsSelector{k.outputs[0], int(num(0, 3))};
      }
      break;
    case KernelKind::CacheWrite:
      k.inputs = {name("rows")};
      k.outputs = {name("cache")};
      break;
    }
    if (k.kind != KernelKind::CacheWrite)
      k.variants = variants(num(1, 3));
    k.promptRowsAfter = k.kind != KernelKind::CacheWrite && coin();
    for (size_t d = 0; d < index; ++d)
      if (coin())
        k.deps.push_back(d);
    return k;
  }
  ModuleSpec module() {
    ModuleSpec m;
    m.target = coin() ? "host" : name("target");
    m.halideTarget = coin() ? "" : "x86-64-linux-avx2";
    m.gpu = coin();
    m.library = name("lib") + ".so";
    for (int64_t e = num(0, 3); e > 0; --e) {
      EntrySpec es;
      es.name = name("entry");
      std::vector<std::string> inputNames;
      for (int64_t i = num(0, 4); i > 0; --i) {
        es.inputs.push_back(tensor(inputNames, true));
        inputNames.push_back(es.inputs.back().name);
      }
      for (int64_t i = num(0, 3); i > 0; --i)
        es.outputs.push_back(tensor(inputNames, false));
      for (int64_t i = num(0, 3); i > 0; --i)
        es.temporaries.push_back(tensor(inputNames, false));
      for (int64_t i = num(0, 3); i > 0; --i)
        es.valueBuffers.push_back(tensor(inputNames, false));
      for (int64_t i = num(0, 6); i > 0; --i)
        es.kernels.push_back(kernel(es.kernels.size()));
      m.entries.push_back(std::move(es));
    }
    return m;
  }
};

std::string errorOf(const std::string &text) {
  try {
    fromJson(text, "m.json");
  } catch (const ManifestError &e) {
    return e.what();
  }
  return "";
}

} // namespace

TEST(ManifestJson, RoundTripsRandomManifests) {
  for (uint64_t seed = 1; seed <= 500; ++seed) {
    Gen g(seed);
    ModuleSpec m = g.module();
    std::string text = toJson(m);
    ModuleSpec back;
    ASSERT_NO_THROW(back = fromJson(text, "random")) << "seed " << seed << "\n" << text;
    ASSERT_TRUE(back == m) << "seed " << seed << "\n" << text;
    ASSERT_EQ(toJson(back), text) << "seed " << seed;
  }
}

TEST(ManifestJson, EqualityNoticesEachField) {
  Gen g(7);
  ModuleSpec m;
  do
    m = g.module();
  while (m.entries.empty() || m.entries[0].kernels.empty());
  ModuleSpec c = m;
  c.entries[0].kernels[0].loc += "!";
  EXPECT_FALSE(c == m);
  c = m;
  c.entries[0].kernels[0].variants.push_back({"extra", 1});
  EXPECT_FALSE(c == m);
  c = m;
  c.gpu = !c.gpu;
  EXPECT_FALSE(c == m);
}

TEST(ManifestJson, LocatedErrors) {
  const std::string head =
      R"({"format": "deltaflow-module", "version": 1, "target": "host", "entries": [)";
  EXPECT_EQ(errorOf("{"), errorOf("{")); // deterministic
  EXPECT_NE(errorOf("{").find("m.json: malformed JSON"), std::string::npos);
  EXPECT_EQ(errorOf(R"({"format": "x", "version": 1})"),
            "m.json: not a deltaflow module manifest");
  EXPECT_EQ(errorOf(R"({"format": "deltaflow-module", "version": 2})"),
            "m.json: unsupported manifest version");
  EXPECT_EQ(errorOf(R"({"format": "deltaflow-module", "version": "1"})"),
            "m.json: field 'version' has the wrong type");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [{"name": "q", "dtype": "float64", "shape": []}],
      "outputs": [], "temporaries": [], "kernels": []}]})"),
            "m.json: entry 'e' tensor 'q': unsupported dtype 'float64'");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [{"name": "q", "dtype": "float32", "shape": [], "role": "bias"}],
      "outputs": [], "temporaries": [], "kernels": []}]})"),
            "m.json: entry 'e' tensor 'q': unknown role 'bias'");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "k", "kind": "conv", "loc": "x", "inputs": [], "outputs": []}]}]})"),
            "m.json: entry 'e' kernel 'k': unknown kernel kind 'conv'");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "k", "kind": "delta_correct", "loc": "x", "inputs": [], "outputs": [],
      "params": {"stride": true}, "variants": [{"symbol": "s"}]}]}]})"),
            "m.json: entry 'e' kernel 'k' params: field 'stride' has the wrong type");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "k", "kind": "graph", "loc": "x", "inputs": [], "outputs": [],
      "params": {"ops": "add"}, "variants": [{"symbol": "s"}], "deps": [0]}]}]})"),
            "m.json: entry 'e' kernel 'k': depends on kernel 0, which does not precede it");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "k", "kind": "graph", "loc": "x", "inputs": [], "outputs": [],
      "params": {"ops": "add"}, "variants": []}]}]})"),
            "m.json: entry 'e' kernel 'k': no variants");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "k", "kind": "graph", "loc": "x", "inputs": [], "outputs": ["o"],
      "params": {"ops": "add"}, "variants": [{"symbol": "s"}], "rows": {"buffer": "o", "dim": -1}}]}]})"),
            "m.json: entry 'e' kernel 'k': rows must name one of the kernel's buffers and a dimension >= 0, got 'o' dim -1");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "a", "kind": "graph", "loc": "x", "inputs": [], "outputs": ["t"],
      "params": {"ops": "add"}, "variants": [{"symbol": "s"}]},
      {"name": "k", "kind": "graph", "loc": "x", "inputs": ["t"], "outputs": [],
      "params": {"ops": "add"}, "variants": [{"symbol": "s"}], "deps": [0.5]}]}]})"),
            "m.json: entry 'e' kernel 'k': field 'deps' has the wrong type");
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "k", "kind": "graph", "loc": "x", "inputs": [], "outputs": [],
      "params": {"ops": "add"}, "variants": [{"symbol": "s", "ptx": {"function": "f", "threads": 256, "shared_bytes": 0,
      "rows_per_block": 1, "compute_capability": 80, "abi": "decode-v2"}}]}]}]})"),
            "m.json: entry 'e' kernel 'k' variant 's' ptx: unknown launch ABI 'decode-v2' "
            "(this runtime knows decode-v1, dense-rows-v1, delta-correct-v1, gemm-v1, "
            "gemv-v2 and token-select-v2 to -v4)");
  // A negative bound did not round-trip (toJson omits max_rows below 0, the
  // "any rows" default): found by fuzz-manifest in CI, corpus
  // regress-negative-max-rows.
  EXPECT_EQ(errorOf(head + R"({"name": "e", "inputs": [], "outputs": [], "temporaries": [],
      "kernels": [{"name": "k", "kind": "graph", "loc": "x", "inputs": [], "outputs": [],
      "params": {"ops": "add"}, "variants": [{"symbol": "s", "max_rows": -4}]}]}]})"),
            "m.json: entry 'e' kernel 'k' variant 's': max_rows -4 is negative");
}

TEST(ManifestJson, ArgumentLayoutsByKind) {
  KernelSpec k;
  k.name = "s";
  k.kind = KernelKind::SparseAttention;
  k.inputs = {"q", "k", "v", "idx"};
  k.outputs = {"out"};
  EXPECT_EQ(k.buffer(Arg::Query), "q");
  EXPECT_EQ(k.buffer(Arg::Indices), "idx");
  EXPECT_EQ(k.argIndex(Arg::Out), 4);
  EXPECT_EQ(k.argIndex(Arg::Lse), -1) << "no LSE output";
  k.inputs.pop_back(); // window + sinks: no selection input
  EXPECT_EQ(k.argIndex(Arg::Indices), -1);
  EXPECT_THROW(k.buffer(Arg::Indices), ManifestError);
  k.kind = KernelKind::Select;
  k.inputs = {"q", "k"};
  k.outputs = {"idx"};
  EXPECT_EQ(k.argIndex(Arg::Indices), 2);
}

// Found running crafted inputs through fuzz-manifest (their files:
// test/fuzz/corpus/manifest/regress-*; libFuzzer had not reached them): a derived
// dimension's div and add were bounded only below, and resolving it at run
// time overflowed int64 (undefined behaviour); a shape entry beyond int64
// read as -1 (dynamic).
TEST(ManifestJson, DimensionsBeyondInt64AreErrors) {
  const std::string head =
      R"({"format": "deltaflow-module", "version": 1, "target": "host", "entries": [)";
  auto withTemp = [&](const std::string &dim) {
    return head + R"({"name": "e", "inputs": [{"name": "q", "dtype": "float32",
      "shape": [1, -1], "role": "input"}], "outputs": [], "temporaries": [{"name": "t",
      "dtype": "float32", "shape": [)" + dim + R"(]}], "kernels": []}]})";
  };
  auto resolved = [&](const std::string &dim) {
    ModuleSpec m = fromJson(withTemp(dim), "m.json");
    return resolveShape(m.entries[0].temporaries[0], {{"q", {1, 5}}});
  };
  EXPECT_EQ(resolved(R"({"like": "q", "dim": 1, "div": 2, "add": 3})"),
            (std::vector<int64_t>{6})); // ceil(5 / 2) + 3
  EXPECT_EQ(resolved(R"({"like": "q", "dim": 1, "div": 9223372036854775807, "add": 0})"),
            (std::vector<int64_t>{1}));
  try {
    resolved(R"({"like": "q", "dim": 1, "div": 1, "add": 9223372036854775807})");
    ADD_FAILURE() << "resolveShape did not throw";
  } catch (const ManifestError &e) {
    EXPECT_EQ(std::string(e.what()),
              "manifest: 't': dimension ceil(5 / 1) + 9223372036854775807 is out "
              "of range (from dimension 1 of 'q')");
  }
  EXPECT_EQ(errorOf(withTemp("18446744073709551615")),
            "m.json: entry 'e' tensor 't': bad shape entry 18446744073709551615");

  // The compiler's derive: a static size beyond int64 is not expressible.
  EXPECT_FALSE(Dim::fixed(INT64_MAX).derive(1, 1).has_value());
  EXPECT_EQ(Dim::fixed(INT64_MAX).derive(2, 0)->size, INT64_MAX / 2 + 1);
  EXPECT_EQ(Dim::fixed(70).derive(16, 143)->size, 148);
}
