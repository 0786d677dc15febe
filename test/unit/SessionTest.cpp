//===- SessionTest.cpp - Model / Session on a tiny compiled Llama ---------===//
//
// Fixtures (test/unit/CMakeLists.txt): tiny_llama.so (dense) and
// tiny_llama_ts.so (token-select decode, delta stride 8) compiled from one
// gen_llama.py graph (1 layer, d_model 64, 4 heads, 2 KV heads, head_dim 16,
// ffn 128, vocab 96), and tiny_llama.safetensors from make_weights.py.
//
//===----------------------------------------------------------------------===//

#include "ErrorOf.h"
#include "deltaflow/Runtime/Safetensors.h"
#include "deltaflow/Runtime/Session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <thread>
#include <unistd.h>

using namespace deltaflow;
namespace fs = std::filesystem;

namespace {

const std::string kDense = DELTAFLOW_FIXTURE_DIR "/tiny_llama.so";
const std::string kSparse = DELTAFLOW_FIXTURE_DIR "/tiny_llama_ts.so";
const std::string kWeights = DELTAFLOW_FIXTURE_DIR "/tiny_llama.safetensors";
const std::string kF16Cache = DELTAFLOW_FIXTURE_DIR "/tiny_llama_f16kv.so";
constexpr int64_t kVocab = 96;

std::shared_ptr<rt::Model> dense() {
  static auto m = rt::Model::load(kDense, kWeights);
  return m;
}
std::shared_ptr<rt::Model> sparse() {
  static auto m = rt::Model::load(kSparse, kWeights);
  return m;
}

#define EXPECT_ERROR_HAS(expr, text)                                           \
  do {                                                                         \
    std::string err_ = errorOf([&] { expr; });                                 \
    EXPECT_FALSE(err_.empty()) << #expr " did not throw";                      \
    EXPECT_NE(err_.find(text), std::string::npos)                              \
        << "error of " #expr ": " << err_;                                     \
  } while (0)

std::vector<int32_t> randomTokens(size_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int32_t> d(0, int32_t(kVocab) - 1);
  std::vector<int32_t> t(n);
  for (int32_t &x : t)
    x = d(gen);
  return t;
}

std::vector<float> values(const rt::Tensor &t) {
  EXPECT_EQ(t.dtype(), rt::DType::Float32);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{1, kVocab}));
  return std::vector<float>(t.f32(), t.f32() + t.numel());
}

int32_t argmax(const std::vector<float> &v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

bool allFinite(const std::vector<float> &v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

double relL2(const std::vector<float> &a, const std::vector<float> &b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

TEST(Session, LoadsTheFixtures) {
  for (auto m : {dense(), sparse()}) {
    EXPECT_EQ(m->vocab(), kVocab);
    EXPECT_GT(m->weightBytes(), 0u);
    EXPECT_TRUE(m->weights().count("layers.0.wq"));
  }
  // The sparse module selects tokens in decode.
  bool select = false;
  for (const rt::KernelInfo &k : sparse()->module().entry("decode").kernels)
    select |= k.kind == rt::KernelKind::Select;
  EXPECT_TRUE(select) << "tiny_llama_ts decode has no select kernel";
}

TEST(Session, DecodeBeforePrefillThrows) {
  rt::Session s(dense());
  EXPECT_ERROR_HAS(s.decode(1), "decode before prefill");
  EXPECT_EQ(s.position(), 0);
  // Still usable.
  EXPECT_TRUE(allFinite(values(s.prefill({1, 2, 3}, 0))));
  EXPECT_EQ(s.position(), 3);
  EXPECT_TRUE(allFinite(values(s.decode(4))));
  EXPECT_EQ(s.position(), 4);
}

TEST(Session, PrefillPositionMustBeTheSessions) {
  rt::SessionOptions o;
  o.capacity = 64;
  rt::Session s(dense(), o);
  EXPECT_ERROR_HAS(s.prefill(randomTokens(4, 1), 3), "skip ahead");
  s.prefill(randomTokens(10, 2), 0);
  EXPECT_EQ(s.position(), 10);
  EXPECT_ERROR_HAS(s.prefill(randomTokens(4, 3), 5), "backwards");
  EXPECT_ERROR_HAS(s.prefill(randomTokens(4, 3), 0), "backwards");
  EXPECT_ERROR_HAS(s.prefill(randomTokens(4, 3), 11), "skip ahead");
  EXPECT_ERROR_HAS(s.prefill({}, 10), "no tokens");
  EXPECT_EQ(s.position(), 10);
  s.prefill(randomTokens(4, 3), 10);
  EXPECT_EQ(s.position(), 14);
}

TEST(Session, CapacityIsEnforcedAndRecoverable) {
  rt::SessionOptions o;
  o.capacity = 16;
  rt::Session s(dense(), o);
  EXPECT_EQ(s.capacity(), 16);
  EXPECT_GT(s.cacheBytes(), 0u);
  EXPECT_ERROR_HAS(s.prefill(randomTokens(20, 4), 0), "capacity");
  EXPECT_ERROR_HAS(s.prefill(randomTokens(17, 4), 0), "capacity of 16");
  EXPECT_EQ(s.position(), 0);
  // The failed prefills left the session as it was.
  std::vector<float> a = values(s.prefill(randomTokens(8, 5), 0));
  EXPECT_TRUE(allFinite(a));
  EXPECT_EQ(s.position(), 8);
  {
    rt::Session fresh(dense(), o);
    EXPECT_EQ(values(fresh.prefill(randomTokens(8, 5), 0)), a)
        << "a prefill after errors differs from one on a fresh session";
  }
  EXPECT_ERROR_HAS(s.prefill(randomTokens(9, 6), 8), "capacity");
  s.prefill(randomTokens(7, 6), 8);
  EXPECT_TRUE(allFinite(values(s.decode(3)))); // position 15 -> 16: the last
  EXPECT_EQ(s.position(), 16);
  EXPECT_ERROR_HAS(s.decode(3), "capacity");
  EXPECT_ERROR_HAS(s.prefill({1}, 16), "capacity");
  EXPECT_EQ(s.position(), 16);
}

TEST(Session, TokensOutsideTheVocabulary) {
  rt::SessionOptions o;
  o.capacity = 32;
  rt::Session s(dense(), o);
  EXPECT_ERROR_HAS(s.prefill({1, 2, 96, 3}, 0), "token 96");
  EXPECT_ERROR_HAS(s.prefill({1, -1}, 0), "token -1");
  EXPECT_EQ(s.position(), 0);
  s.prefill({0, 95, 7}, 0);
  EXPECT_ERROR_HAS(s.decode(96), "token 96");
  EXPECT_ERROR_HAS(s.decode(-1), "token -1");
  EXPECT_ERROR_HAS(s.decode(1 << 20), "vocabulary");
  EXPECT_EQ(s.position(), 3);
  EXPECT_TRUE(allFinite(values(s.decode(95))));
}

TEST(Session, CapacityMustBePositive) {
  rt::SessionOptions o;
  o.capacity = 0;
  EXPECT_ERROR_HAS(rt::Session(dense(), o), "capacity");
  o.capacity = -5;
  EXPECT_ERROR_HAS(rt::Session(dense(), o), "capacity");
}

TEST(Session, LoadWithThreads) {
  auto m1 = rt::Model::load(kDense, kWeights, 1);
  auto m2 = rt::Model::load(kDense, kWeights, 2);
  EXPECT_EQ(m1->executor().concurrency(), 1);
  EXPECT_EQ(m2->executor().concurrency(), 2);
  std::vector<int32_t> prompt = randomTokens(33, 7);
  std::vector<std::vector<float>> out;
  for (auto m : {m1, m2, dense()}) {
    rt::SessionOptions o;
    o.capacity = 64;
    rt::Session s(m, o);
    rt::StepStats st;
    std::vector<float> a = values(s.prefill(prompt, 0, &st));
    EXPECT_GT(st.seconds, 0);
    EXPECT_FALSE(st.profile.empty());
    // The buffer plan shares memory between the temporaries of the layer.
    EXPECT_GT(st.arenaBytes, 0u);
    EXPECT_LT(st.arenaBytes, st.separateBytes);
    EXPECT_GT(st.valueBytes, 0u);
    std::vector<float> b = values(s.decode(argmax(a)));
    a.insert(a.end(), b.begin(), b.end());
    ASSERT_TRUE(allFinite(a));
    out.push_back(a);
  }
  EXPECT_LT(relL2(out[0], out[2]), 1e-5);
  EXPECT_LT(relL2(out[1], out[2]), 1e-5);
}

//===----------------------------------------------------------------------===//
// Weights errors
//===----------------------------------------------------------------------===//

/// One tensor to write: safetensors dtype, shape and raw bytes.
struct Item {
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

const char *stDtype(rt::DType t) {
  switch (t) {
  case rt::DType::Float32:
    return "F32";
  case rt::DType::Float16:
    return "F16";
  case rt::DType::BFloat16:
    return "BF16";
  case rt::DType::Int32:
    return "I32";
  }
  return "?";
}

/// Writes a .safetensors file: header padded to 8 bytes, tensors 64-byte
/// aligned in the data section.
void writeSafetensors(const std::string &path,
                      const std::map<std::string, Item> &items) {
  std::ostringstream h;
  std::string data;
  h << "{\"__metadata__\":{\"format\":\"pt\"}";
  for (const auto &[name, it] : items) {
    while (data.size() % 64)
      data += '\0';
    size_t begin = data.size();
    data += it.bytes;
    h << ",\"" << name << "\":{\"dtype\":\"" << it.dtype << "\",\"shape\":[";
    for (size_t i = 0; i < it.shape.size(); ++i)
      h << (i ? "," : "") << it.shape[i];
    h << "],\"data_offsets\":[" << begin << "," << data.size() << "]}";
  }
  h << "}";
  std::string header = h.str();
  while (header.size() % 8)
    header += ' ';
  std::ofstream out(path, std::ios::binary);
  uint64_t n = header.size();
  for (int i = 0; i < 8; ++i)
    out.put(char((n >> (8 * i)) & 0xff));
  out << header << data;
  ASSERT_TRUE(out.good()) << path;
}

class SessionWeights : public ::testing::Test {
protected:
  fs::path dir = fs::temp_directory_path() /
                 ("deltaflow-session-" + std::to_string(::getpid()));
  std::map<std::string, Item> items;

  void SetUp() override {
    fs::create_directories(dir);
    auto f = rt::SafetensorsFile::open(kWeights);
    for (const std::string &name : f->names()) {
      rt::Tensor t = f->tensor(name);
      items[name] = {stDtype(t.dtype()), t.shape(),
                     std::string(static_cast<const char *>(t.raw()), t.bytes())};
    }
    ASSERT_TRUE(items.count("layers.0.wq"));
  }
  void TearDown() override { fs::remove_all(dir); }

  std::string write(const char *name) {
    std::string p = (dir / name).string();
    writeSafetensors(p, items);
    return p;
  }
  std::string loadError(const std::string &so, const std::string &weights) {
    return errorOf([&] { rt::Model::load(so, weights); });
  }
};

TEST_F(SessionWeights, UnmodifiedCopyLoads) {
  std::string p = write("copy.safetensors");
  auto m = rt::Model::load(kDense, p);
  rt::SessionOptions o;
  o.capacity = 32;
  rt::Session a(m, o), b(dense(), o);
  std::vector<int32_t> prompt = randomTokens(12, 8);
  EXPECT_EQ(values(a.prefill(prompt, 0)), values(b.prefill(prompt, 0)));
}

TEST_F(SessionWeights, MissingTensor) {
  items.erase("layers.0.wq");
  std::string err = loadError(kDense, write("missing.safetensors"));
  EXPECT_NE(err.find("missing tensor 'layers.0.wq'"), std::string::npos) << err;
  err = loadError(kSparse, (dir / "missing.safetensors").string());
  EXPECT_NE(err.find("'layers.0.wq'"), std::string::npos) << err;
}

TEST_F(SessionWeights, WrongShape) {
  Item &wq = items.at("layers.0.wq");
  ASSERT_EQ(wq.shape, (std::vector<int64_t>{64, 64}));
  wq.shape = {64, 32};
  wq.bytes.resize(64 * 32 * 4);
  std::string err = loadError(kDense, write("shape.safetensors"));
  EXPECT_NE(err.find("'layers.0.wq'"), std::string::npos) << err;
  EXPECT_NE(err.find("shape"), std::string::npos) << err;
  EXPECT_NE(err.find("[64, 32]"), std::string::npos) << err;
  // Transposed (same size, other shape) is refused too.
  Item &w1 = items.at("layers.0.w1");
  ASSERT_EQ(w1.shape, (std::vector<int64_t>{64, 128}));
  wq.shape = {64, 64};
  wq.bytes.resize(64 * 64 * 4);
  w1.shape = {128, 64};
  err = loadError(kDense, write("transposed.safetensors"));
  EXPECT_NE(err.find("'layers.0.w1'"), std::string::npos) << err;
  // A rank mismatch.
  w1.shape = {1, 64, 128};
  err = loadError(kDense, write("rank.safetensors"));
  EXPECT_NE(err.find("'layers.0.w1'"), std::string::npos) << err;
}

TEST_F(SessionWeights, WrongDtype) {
  Item &wq = items.at("layers.0.wq");
  rt::Tensor f32(wq.shape);
  ASSERT_EQ(f32.bytes(), wq.bytes.size());
  std::memcpy(f32.raw(), wq.bytes.data(), f32.bytes());
  rt::Tensor f16 = f32.toFloat16();
  wq.dtype = "F16";
  wq.bytes.assign(static_cast<const char *>(f16.raw()), f16.bytes());
  std::string err = loadError(kDense, write("dtype.safetensors"));
  EXPECT_NE(err.find("'layers.0.wq'"), std::string::npos) << err;
  EXPECT_NE(err.find("F16"), std::string::npos) << err;
}

TEST_F(SessionWeights, TruncatedFile) {
  std::string p = write("truncated.safetensors");
  uintmax_t size = fs::file_size(p);
  fs::resize_file(p, size - 100);
  std::string err = loadError(kDense, p);
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;
  // Cut inside the header.
  fs::resize_file(p, 20);
  EXPECT_FALSE(loadError(kDense, p).empty());
}

TEST_F(SessionWeights, NotAModelModule) {
  std::string err = loadError(DELTAFLOW_FIXTURE_DIR "/attention.so", kWeights);
  EXPECT_NE(err.find("'prefill'"), std::string::npos) << err;
  err = loadError(kDense, (dir / "no-such.safetensors").string());
  EXPECT_NE(err.find("no-such.safetensors"), std::string::npos) << err;
}

//===----------------------------------------------------------------------===//
// Concurrency and determinism
//===----------------------------------------------------------------------===//

struct Generation {
  std::vector<std::vector<float>> logits; ///< prefill, then each decode
  std::vector<int32_t> generated;
  int hits = 0, misses = 0;
};

Generation generate(std::shared_ptr<rt::Model> m, const rt::SessionOptions &o,
             const std::vector<int32_t> &prompt, int steps) {
  Generation r;
  rt::Session s(std::move(m), o);
  r.logits.push_back(values(s.prefill(prompt, 0)));
  for (int i = 0; i < steps; ++i) {
    int32_t next = argmax(r.logits.back());
    r.generated.push_back(next);
    r.logits.push_back(values(s.decode(next)));
  }
  r.hits = s.selectHits();
  r.misses = s.selectMisses();
  return r;
}

void compareRuns(const std::vector<Generation> &together,
                 const std::vector<Generation> &aloneRuns,
                 const std::vector<size_t> &lengths, int steps, bool sparse,
                 bool requireHits);

void concurrentMatchesSequential(std::shared_ptr<rt::Model> m,
                                 const rt::SessionOptions &o, bool sparse,
                                 bool requireHits = false) {
  // Past the sparse fixture's pattern (sinks 4 + budget 16 + window 8 = 28
  // keys), so that its decode selects (shorter contexts run dense).
  const std::vector<size_t> lengths = {31, 40, 57};
  const int steps = 4;
  std::vector<std::vector<int32_t>> prompts;
  for (size_t i = 0; i < lengths.size(); ++i)
    prompts.push_back(randomTokens(lengths[i], 100 + i));

  // Sequential first: the reference.
  std::vector<Generation> alone;
  for (size_t i = 0; i < lengths.size(); ++i)
    alone.push_back(generate(m, o, prompts[i], steps));

  // Then concurrently, the threads released together; a few rounds.
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::vector<Generation> together(lengths.size());
    std::vector<std::string> errors(lengths.size());
    std::atomic<int> ready{0};
    std::vector<std::thread> threads;
    for (size_t i = 0; i < lengths.size(); ++i)
      threads.emplace_back([&, i] {
        ready.fetch_add(1);
        while (ready.load() < int(lengths.size()))
          std::this_thread::yield();
        try {
          together[i] = generate(m, o, prompts[i], steps);
        } catch (const std::exception &e) {
          errors[i] = e.what();
        }
      });
    for (std::thread &t : threads)
      t.join();
    for (size_t i = 0; i < lengths.size(); ++i)
      ASSERT_EQ(errors[i], "") << "session " << i;
    compareRuns(together, alone, lengths, steps, sparse, requireHits);
  }
}

void compareRuns(const std::vector<Generation> &together,
                 const std::vector<Generation> &aloneRuns,
                 const std::vector<size_t> &lengths, int steps, bool sparse,
                 bool requireHits) {
  for (size_t i = 0; i < lengths.size(); ++i) {
    SCOPED_TRACE("prompt of " + std::to_string(lengths[i]) + " tokens");
    const Generation &alone = aloneRuns[i];
    ASSERT_EQ(together[i].logits.size(), size_t(steps + 1));
    ASSERT_EQ(alone.logits.size(), size_t(steps + 1));
    for (int k = 0; k <= steps; ++k) {
      EXPECT_TRUE(allFinite(alone.logits[k])) << "step " << k;
      EXPECT_EQ(0, std::memcmp(together[i].logits[k].data(),
                               alone.logits[k].data(),
                               alone.logits[k].size() * sizeof(float)))
          << "step " << k << ": concurrent and sequential logits differ (rel L2 "
          << relL2(together[i].logits[k], alone.logits[k]) << ")";
    }
    EXPECT_EQ(together[i].generated, alone.generated);
    EXPECT_EQ(together[i].hits, alone.hits);
    EXPECT_EQ(together[i].misses, alone.misses);
    if (sparse) {
      EXPECT_GT(alone.hits + alone.misses, 0)
          << "the selection cache was never consulted";
      if (requireHits) {
        EXPECT_GT(alone.hits, 0) << "no selection was reused";
      }
    } else {
      EXPECT_EQ(alone.hits + alone.misses, 0);
    }
  }
  // Different prompts give different logits (the sessions do not share state).
  EXPECT_NE(together[0].logits[0], together[1].logits[0]);
  EXPECT_NE(together[1].logits[0], together[2].logits[0]);
}

TEST(Session, ConcurrentSessionsMatchSequentialDense) {
  rt::SessionOptions o;
  o.capacity = 128;
  concurrentMatchesSequential(dense(), o, false);
}

TEST(Session, ConcurrentSessionsMatchSequentialSparse) {
  rt::SessionOptions o;
  o.capacity = 128;
  o.selectionCache = true;
  o.theta = 0.5;
  // With random weights, successive decode queries are far apart: at theta
  // 0.5 the cache is consulted (and filled) but rarely reused.
  {
    SCOPED_TRACE("theta 0.5");
    concurrentMatchesSequential(sparse(), o, true);
  }
  // theta -1 reuses every cached selection after the first decode step.
  o.theta = -1.0;
  {
    SCOPED_TRACE("theta -1");
    concurrentMatchesSequential(sparse(), o, true, /*requireHits=*/true);
  }
}

TEST(Session, SparseFixtureIsSparse) {
  rt::SessionOptions o;
  o.capacity = 128;
  o.selectionCache = false;
  // A context within the budget (16 tokens) keeps every token: as dense.
  std::vector<int32_t> shortPrompt = randomTokens(10, 12);
  Generation ds = generate(dense(), o, shortPrompt, 3);
  Generation ss = generate(sparse(), o, shortPrompt, 3);
  for (size_t k = 0; k < ds.logits.size(); ++k)
    EXPECT_LT(relL2(ss.logits[k], ds.logits[k]), 1e-4) << "step " << k;
  // A long one drops tokens in decode.
  std::vector<int32_t> longPrompt = randomTokens(57, 13);
  Generation dl = generate(dense(), o, longPrompt, 3);
  Generation sl = generate(sparse(), o, longPrompt, 3);
  double maxDiff = 0;
  for (size_t k = 0; k < dl.logits.size(); ++k) {
    EXPECT_TRUE(allFinite(sl.logits[k]));
    maxDiff = std::max(maxDiff, relL2(sl.logits[k], dl.logits[k]));
  }
  EXPECT_GT(maxDiff, 1e-6) << "token-select over 60 tokens with budget 16 "
                              "matches dense attention";
}

TEST(Session, SparseModelRunsDenseWhileTheContextFitsItsPattern) {
  // tiny_llama_ts: sinks 4 + budget 16 + window 8 = 28 keys. Up to 28
  // positions every key is in the pattern: the sparse kernels run their
  // dense fallback, the selection and the Delta rows are skipped, and the
  // logits are the dense model's. From 29 on the selection runs.
  rt::SessionOptions o;
  o.capacity = 64;
  std::vector<int32_t> prompt = randomTokens(20, 21);
  rt::Session ds(dense(), o), ss(sparse(), o);
  rt::StepStats st;
  std::vector<float> d = values(ds.prefill(prompt, 0));
  std::vector<float> sv = values(ss.prefill(prompt, 0, &st));
  EXPECT_GT(st.denseFallbacks, 0);
  EXPECT_LT(relL2(sv, d), 1e-5);
  bool sawFallbackKernel = false;
  for (const rt::KernelTiming &k : st.profile) {
    bool skipped = k.symbol.rfind("skipped", 0) == 0;
    EXPECT_EQ(skipped, k.kind == "select" || k.kind == "dense_rows")
        << k.kernel << " (" << k.kind << "): " << k.symbol;
    sawFallbackKernel |= k.symbol.rfind("dense fallback: ", 0) == 0;
  }
  EXPECT_TRUE(sawFallbackKernel);
  for (int step = 0; step < 12; ++step) {
    int32_t next = argmax(d);
    rt::StepStats sd;
    d = values(ds.decode(next));
    sv = values(ss.decode(next, &sd));
    int64_t keys = ss.position(); // the context this step attended
    SCOPED_TRACE("decode with " + std::to_string(keys) + " keys");
    if (keys <= 28) {
      EXPECT_GT(sd.denseFallbacks, 0);
      EXPECT_EQ(sd.selectHits + sd.selectMisses, 0);
      EXPECT_EQ(sd.selectionRows, 0);
      EXPECT_LT(relL2(sv, d), 1e-5);
    } else {
      EXPECT_EQ(sd.denseFallbacks, 0);
      EXPECT_GT(sd.selectHits + sd.selectMisses, 0);
      // One selection row per layer (one chunk, one shared head), counted
      // whether the select kernel ran or the cache gave it; 1..16 keys.
      EXPECT_EQ(sd.selectionRows, sd.selectHits + sd.selectMisses);
      EXPECT_GE(sd.selectedKeys, sd.selectionRows);
      EXPECT_LE(sd.selectedKeys, 16 * sd.selectionRows);
    }
  }
  EXPECT_GT(ss.denseFallbacks(), 0);
}

TEST(Session, SelectionSizeCountsUsedSlots) {
  rt::Tensor idx({1, 2, 3, 4}, rt::DType::Int32);
  for (int64_t i = 0; i < idx.numel(); ++i)
    idx.i32()[i] = i % 4 == 3 ? -1 : int32_t(i); // 3 of 4 slots used
  rt::SelectionSize n = rt::selectionSize(idx);
  EXPECT_EQ(n.rows, 6);
  EXPECT_EQ(n.selected, 18);
  rt::Tensor f({1, 1, 1, 4}); // not int32: not a selection
  EXPECT_EQ(rt::selectionSize(f).rows, 0);
}

TEST(Session, F16KvCacheHoldsRoundedKeysAndValues) {
  // tiny_llama_f16kv: the same model with an f16 KV cache. cache_write
  // rounds each K/V row to f16, so the logits follow the f32-cache model's
  // to f16 rounding, and the cache takes half the bytes.
  auto m16 = rt::Model::load(kF16Cache, kWeights);
  rt::SessionOptions o;
  o.capacity = 96;
  rt::Session s32(dense(), o), s16(m16, o);
  EXPECT_EQ(s16.cacheBytes() * 2, s32.cacheBytes());
  std::vector<int32_t> prompt = randomTokens(45, 31);
  std::vector<float> a = values(s32.prefill(prompt, 0));
  std::vector<float> b = values(s16.prefill(prompt, 0));
  EXPECT_TRUE(allFinite(b));
  double err = relL2(b, a);
  EXPECT_LT(err, 2e-3) << "prefill";
  EXPECT_GT(err, 0.0) << "an f16 cache that rounds nothing";
  for (int step = 0; step < 6; ++step) {
    int32_t next = argmax(a);
    a = values(s32.decode(next));
    b = values(s16.decode(next));
    EXPECT_TRUE(allFinite(b));
    EXPECT_LT(relL2(b, a), 2e-3) << "decode step " << step;
  }
}

TEST(Session, KvCacheOfTheWrongDtypeIsOneLocatedLine) {
  // Fed directly (not through a Session, which sizes the cache from the
  // manifest): an f32 cache for the f16-cache model, and the reverse.
  auto m16 = rt::Model::load(kF16Cache, kWeights);
  for (bool f16Model : {true, false}) {
    std::shared_ptr<rt::Model> m = f16Model ? m16 : dense();
    std::map<std::string, rt::Tensor> in = m->weights();
    in["tokens"] = rt::Tensor({1}, rt::DType::Int32);
    in["positions"] = rt::Tensor({1}, rt::DType::Int32);
    in["last_row"] = rt::Tensor({1, 1}, rt::DType::Int32);
    in["tokens"].i32()[0] = 3;
    in["positions"].i32()[0] = 0;
    in["last_row"].i32()[0] = 0;
    rt::Tensor wrong({1, 2, 1, 16}, f16Model ? rt::DType::Float32 : rt::DType::Float16);
    for (const char *c : {"cache.k.0", "cache.v.0"})
      in[c] = wrong;
    std::string err = errorOf([&] { m->executor().run("decode", in); });
    EXPECT_NE(err.find("entry 'decode' input 'cache.k.0': dtype "), std::string::npos)
        << err;
    EXPECT_NE(err.find(f16Model ? "expected float16" : "expected float32"),
              std::string::npos)
        << err;
    EXPECT_EQ(err.find('\n'), std::string::npos) << "one line: " << err;
  }
}

TEST(Session, SelectionCacheHitsAtLowTheta) {
  // theta -1 accepts every cached selection after the first decode step;
  // theta 2 accepts none.
  std::vector<int32_t> prompt = randomTokens(40, 9);
  rt::SessionOptions o;
  o.capacity = 128;
  o.theta = -1.0;
  Generation always = generate(sparse(), o, prompt, 4);
  EXPECT_GT(always.hits, 0);
  o.theta = 2.0;
  Generation never = generate(sparse(), o, prompt, 4);
  EXPECT_EQ(never.hits, 0);
  EXPECT_GT(never.misses, 0);
  o.selectionCache = false;
  Generation off = generate(sparse(), o, prompt, 4);
  EXPECT_EQ(off.hits + off.misses, 0);
  // Without reuse, the cache changes nothing.
  for (size_t k = 0; k < off.logits.size(); ++k)
    EXPECT_EQ(off.logits[k], never.logits[k]) << "step " << k;
}

TEST(Session, ChunkedPrefillMatchesOneCall) {
  const std::vector<int32_t> prompt = randomTokens(37, 11);
  rt::SessionOptions o;
  o.capacity = 64;
  rt::Session whole(dense(), o);
  std::vector<float> a = values(whole.prefill(prompt, 0));
  for (size_t k : {size_t(1), size_t(13), size_t(36)}) {
    SCOPED_TRACE("split at " + std::to_string(k));
    rt::Session chunked(dense(), o);
    chunked.prefill(std::vector<int32_t>(prompt.begin(), prompt.begin() + k), 0);
    std::vector<float> b = values(chunked.prefill(
        std::vector<int32_t>(prompt.begin() + k, prompt.end()), int64_t(k)));
    EXPECT_EQ(chunked.position(), int64_t(prompt.size()));
    EXPECT_LT(relL2(b, a), 1e-4);
    // Prefill of one token equals decode of it: continue both sessions.
    std::vector<float> c = values(chunked.decode(argmax(a)));
    rt::Session ref(dense(), o);
    ref.prefill(prompt, 0);
    std::vector<float> d = values(ref.decode(argmax(a)));
    EXPECT_LT(relL2(c, d), 1e-4);
  }
  // Three chunks, the last a single token through prefill; and prefill then
  // decode of the last token.
  rt::Session three(dense(), o), viaDecode(dense(), o);
  three.prefill(std::vector<int32_t>(prompt.begin(), prompt.begin() + 10), 0);
  three.prefill(std::vector<int32_t>(prompt.begin() + 10, prompt.end() - 1), 10);
  std::vector<float> e = values(three.prefill({prompt.back()}, 36));
  EXPECT_LT(relL2(e, a), 1e-4);
  viaDecode.prefill(std::vector<int32_t>(prompt.begin(), prompt.end() - 1), 0);
  std::vector<float> f = values(viaDecode.decode(prompt.back()));
  EXPECT_LT(relL2(f, a), 1e-4);
}

} // namespace
