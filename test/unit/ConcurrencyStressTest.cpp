//===- ConcurrencyStressTest.cpp - many sessions and runs on many threads -===//
//
// Sessions of one Model, and runs of one Executor, may come from several
// threads at once (Session.h, Executor.h). Here 8 threads each drive four
// sessions (dense, token-select with Δ and the selection cache, an f16 KV
// cache; one-shot and chunked prefills, then greedy decode steps),
// interleaved step by step, with runs of the attention and sparse-kernel
// fixtures through shared Executors in between; five rounds. Every result
// must equal, bit for bit, the same work done sequentially first.
// scripts/sanitize.sh runs it under ASan and UBSan.
//
// Fixtures (test/unit/CMakeLists.txt): tiny_llama{,_ts,_f16kv}.so with
// tiny_llama.safetensors, attention_variants.so and sparse_ops.so.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Runtime/Executor.h"
#include "deltaflow/Runtime/Session.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

using namespace deltaflow;

namespace {

constexpr int kThreads = 8;
constexpr int kVocab = 96;

const std::string kFixtures = DELTAFLOW_FIXTURE_DIR;

/// Bytes of every output of one piece of work, in order.
using Result = std::vector<std::vector<uint8_t>>;

void append(Result &r, const rt::Tensor &t) {
  const auto *p = static_cast<const uint8_t *>(t.raw());
  r.emplace_back(p, p + t.bytes());
}

std::vector<int32_t> tokens(size_t n, uint64_t seed) {
  std::mt19937_64 gen(seed);
  std::uniform_int_distribution<int32_t> d(0, kVocab - 1);
  std::vector<int32_t> t(n);
  for (int32_t &x : t)
    x = d(gen);
  return t;
}

int32_t argmax(const rt::Tensor &logits) {
  const float *p = logits.f32();
  return int32_t(std::max_element(p, p + logits.numel()) - p);
}

/// One generation: a prefill (in one call, or in two with the rows still to
/// come), then greedy decode steps; one step per call of step(), so that a
/// thread can interleave its sessions.
struct Generation {
  std::shared_ptr<rt::Model> model;
  rt::SessionOptions options;
  std::vector<int32_t> prompt;
  size_t firstChunk = 0; ///< 0: the prompt in one prefill call
  int steps = 0;

  std::unique_ptr<rt::Session> session;
  int done = -1; ///< calls made
  int32_t next = 0;
  Result result;

  int calls() const { return (firstChunk ? 2 : 1) + steps; }
  void start() {
    session = std::make_unique<rt::Session>(model, options);
    done = 0;
    result.clear();
  }
  void step() {
    rt::Tensor logits;
    if (done == 0 && firstChunk) {
      std::vector<int32_t> a(prompt.begin(), prompt.begin() + firstChunk);
      logits = session->prefill(a, 0, nullptr,
                                int64_t(prompt.size() - firstChunk));
    } else if (done == (firstChunk ? 1 : 0)) {
      std::vector<int32_t> b(prompt.begin() + firstChunk, prompt.end());
      logits = session->prefill(b, int64_t(firstChunk));
    } else {
      logits = session->decode(next);
    }
    append(result, logits);
    next = argmax(logits);
    ++done;
    if (done == calls()) {
      result.push_back({uint8_t(session->selectHits()),
                        uint8_t(session->selectMisses()),
                        uint8_t(session->denseFallbacks())});
      session.reset();
    }
  }
};

/// One run of a fixture entry on fixed inputs through a shared Executor.
struct KernelRun {
  rt::Executor *exec = nullptr;
  std::string entry;
  std::map<std::string, rt::Tensor> inputs;
  bool denseFallback = true;
  Result result;
  void run() {
    rt::RunOptions o;
    o.denseFallback = denseFallback;
    std::map<std::string, rt::Tensor> out = exec->run(entry, inputs, o);
    result.clear();
    for (const auto &[name, t] : out) // sorted by name
      append(result, t);
  }
};

class ConcurrencyStress : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    const std::string weights = kFixtures + "/tiny_llama.safetensors";
    dense_ = rt::Model::load(kFixtures + "/tiny_llama.so", weights);
    sparse_ = rt::Model::load(kFixtures + "/tiny_llama_ts.so", weights);
    f16kv_ = rt::Model::load(kFixtures + "/tiny_llama_f16kv.so", weights);
    variants_ = std::make_unique<rt::Executor>(
        rt::Module::load(kFixtures + "/attention_variants.so"));
    sparseOps_ = std::make_unique<rt::Executor>(
        rt::Module::load(kFixtures + "/sparse_ops.so"));
  }
  static void TearDownTestSuite() {
    variants_.reset();
    sparseOps_.reset();
    dense_.reset();
    sparse_.reset();
    f16kv_.reset();
  }
  static std::shared_ptr<rt::Model> dense_, sparse_, f16kv_;
  static std::unique_ptr<rt::Executor> variants_, sparseOps_;
};
std::shared_ptr<rt::Model> ConcurrencyStress::dense_, ConcurrencyStress::sparse_,
    ConcurrencyStress::f16kv_;
std::unique_ptr<rt::Executor> ConcurrencyStress::variants_,
    ConcurrencyStress::sparseOps_;

/// Sessions for thread `t`: four each, over the three models, prompts of
/// 5..70 tokens (tiny_llama_ts selects past 28 keys), some prefilled in two
/// chunks, with and without the selection cache.
std::vector<Generation> sessionsFor(int t, std::shared_ptr<rt::Model> dense,
                                    std::shared_ptr<rt::Model> sparse,
                                    std::shared_ptr<rt::Model> f16kv) {
  std::vector<Generation> out;
  for (int s = 0; s < 4; ++s) {
    int i = t * 4 + s;
    Generation g;
    g.model = i % 3 == 0 ? dense : i % 3 == 1 ? sparse : f16kv;
    g.options.capacity = 96;
    g.options.selectionCache = i % 4 != 3;
    g.options.theta = i % 2 ? -1.0 : 0.5;
    size_t len = size_t(5 + (i * 13) % 66);
    g.prompt = tokens(len, 500 + uint64_t(i));
    g.firstChunk = i % 5 == 2 ? len / 2 : 0;
    g.steps = 6 + i % 5;
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<KernelRun> kernelRunsFor(int t, rt::Executor &variants,
                                     rt::Executor &sparseOps) {
  std::vector<KernelRun> out;
  auto in = [&](std::vector<int64_t> q, std::vector<int64_t> kv, uint64_t seed,
                bool f16 = false) {
    rt::Tensor k = rt::randomNormal(kv, seed + 1), v = rt::randomNormal(kv, seed + 2);
    if (f16) {
      k = k.toFloat16();
      v = v.toFloat16();
    }
    return std::map<std::string, rt::Tensor>{
        {"q", rt::randomNormal(q, seed)}, {"k", k}, {"v", v}};
  };
  uint64_t seed = 9000 + uint64_t(t) * 100;
  int64_t nk = 40 + 23 * t, nq = 1 + 7 * t;
  switch (t % 4) {
  case 0:
    out.push_back({&variants, "gqa4_d128_causal", in({1, 8, nq, 128}, {1, 2, nk, 128}, seed)});
    out.push_back({&variants, "mha_d64_causal", in({1, 4, 1, 64}, {1, 4, nk, 64}, seed + 10)});
    break;
  case 1:
    out.push_back({&variants, "gqa8_d64_offset_lse", in({2, 8, nq, 64}, {2, 1, nk, 64}, seed)});
    out.push_back({&variants, "gqa4_d64_f16kv_lse",
                   in({2, 8, nq, 64}, {2, 2, nk, 64}, seed + 10, true)});
    break;
  case 2: {
    auto qk = in({1, 8, 2 * nq + 40, 64}, {1, 2, 3 * nk + 100, 64}, seed);
    out.push_back({&sparseOps, "select_token", {{"q", qk["q"]}, {"k", qk["k"]}}});
    out.push_back({&sparseOps, "select_block", {{"q", qk["q"]}, {"k", qk["k"]}}});
    out.push_back({&sparseOps, "window_a", qk, /*denseFallback=*/false});
    break;
  }
  case 3: {
    auto qk = in({1, 8, nq + 30, 64}, {1, 2, 2 * nk + 90, 64}, seed);
    out.push_back({&sparseOps, "select_adaptive", {{"q", qk["q"]}, {"k", qk["k"]}}});
    out.push_back({&sparseOps, "dense_rows", qk});
    out.push_back({&sparseOps, "sparse_window", qk, /*denseFallback=*/false});
    break;
  }
  }
  return out;
}

TEST_F(ConcurrencyStress, SessionsAndRunsOnManyThreadsMatchSequential) {
  // The work of each thread: its sessions, then its kernel runs.
  std::vector<std::vector<Generation>> gens(kThreads);
  std::vector<std::vector<KernelRun>> runs(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    gens[t] = sessionsFor(t, dense_, sparse_, f16kv_);
    runs[t] = kernelRunsFor(t, *variants_, *sparseOps_);
  }

  // Sequential first: the reference.
  std::vector<std::vector<Result>> genRef(kThreads), runRef(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (Generation &g : gens[t]) {
      g.start();
      while (g.done < g.calls())
        g.step();
      genRef[t].push_back(g.result);
    }
    for (KernelRun &r : runs[t]) {
      r.run();
      runRef[t].push_back(r.result);
    }
  }
  // The sparse model's decode selects, and some selections are reused.
  int hits = 0, misses = 0;
  for (const auto &perThread : genRef)
    for (const Result &r : perThread) {
      hits += r.back()[0];
      misses += r.back()[1];
    }
  EXPECT_GT(misses, 0) << "no token-select decode step ran its selection";
  EXPECT_GT(hits, 0) << "no token-select decode step reused a selection";

  // Then all threads at once, released together: each interleaves its
  // sessions step by step, with a kernel run after each round of steps.
  for (int round = 0; round < 5; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    std::atomic<int> ready{0};
    std::vector<std::string> errors(kThreads);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        ready.fetch_add(1);
        while (ready.load() < kThreads)
          std::this_thread::yield();
        try {
          for (Generation &g : gens[t])
            g.start();
          size_t nextRun = 0;
          for (bool any = true; any;) {
            any = false;
            for (Generation &g : gens[t])
              if (g.done < g.calls()) {
                g.step();
                any = true;
              }
            if (nextRun < runs[t].size())
              runs[t][nextRun++].run();
          }
          while (nextRun < runs[t].size())
            runs[t][nextRun++].run();
        } catch (const std::exception &e) {
          errors[t] = e.what();
        }
      });
    for (std::thread &th : threads)
      th.join();
    for (int t = 0; t < kThreads; ++t) {
      ASSERT_EQ(errors[t], "") << "thread " << t;
      for (size_t s = 0; s < gens[t].size(); ++s) {
        const Result &got = gens[t][s].result, &want = genRef[t][s];
        ASSERT_EQ(got.size(), want.size()) << "thread " << t << " session " << s;
        for (size_t k = 0; k < want.size(); ++k)
          EXPECT_TRUE(got[k] == want[k])
              << "thread " << t << " session " << s << " call " << k
              << ": concurrent and sequential results differ";
      }
      for (size_t r = 0; r < runs[t].size(); ++r)
        EXPECT_TRUE(runs[t][r].result == runRef[t][r])
            << "thread " << t << " run of '" << runs[t][r].entry
            << "': concurrent and sequential outputs differ";
    }
  }
}

} // namespace
