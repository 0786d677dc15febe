//===- BufferPlanTest.cpp - temporaries sharing memory by liveness --------===//
//
// planBuffers on hand-made and random kernel graphs, checked by an
// independent happens-before computation: two temporaries may overlap only
// when every kernel touching one happens-before every kernel touching the
// other (kernels run as a dependency graph, possibly concurrently).
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Common/KernelGraph.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <iterator>
#include <random>
#include <set>

using namespace deltaflow;

namespace {

using Kernels = std::vector<PlanKernel>;

/// planBuffers over the kernels' read-after-write dependencies (as the
/// compiler writes them to the manifest's `deps`).
BufferPlan plan(Kernels ks, const std::map<std::string, size_t> &temps) {
  std::vector<std::vector<size_t>> deps = readAfterWriteDeps(ks);
  for (size_t i = 0; i < ks.size(); ++i)
    ks[i].deps = deps[i];
  return planBuffers(ks, temps);
}
using Temps = std::map<std::string, size_t>;

PlanKernel K(std::vector<std::string> in, std::vector<std::string> out) {
  return {std::move(in), std::move(out)};
}

/// reach[i][j]: kernel j depends, directly or transitively, on kernel i (an
/// edge from each input's producer), computed by depth-first search.
std::vector<std::vector<bool>> happensBefore(const Kernels &ks) {
  const size_t n = ks.size();
  std::vector<std::vector<size_t>> succ(n);
  std::map<std::string, size_t> producer;
  for (size_t j = 0; j < n; ++j) {
    for (const std::string &in : ks[j].inputs) {
      auto it = producer.find(in);
      if (it != producer.end())
        succ[it->second].push_back(j);
    }
    for (const std::string &out : ks[j].outputs)
      producer[out] = j;
  }
  std::vector<std::vector<bool>> reach(n, std::vector<bool>(n, false));
  for (size_t i = 0; i < n; ++i) {
    std::vector<size_t> stack(succ[i].begin(), succ[i].end());
    while (!stack.empty()) {
      size_t k = stack.back();
      stack.pop_back();
      if (reach[i][k])
        continue;
      reach[i][k] = true;
      for (size_t s : succ[k])
        stack.push_back(s);
    }
  }
  return reach;
}

/// Checks every property of `plan`; returns the number of overlapping pairs
/// of unordered temporaries (each also reported as a failure).
int checkPlan(const Kernels &ks, const Temps &temps, const BufferPlan &plan) {
  auto reach = happensBefore(ks);
  std::map<std::string, std::vector<size_t>> touch;
  for (size_t k = 0; k < ks.size(); ++k) {
    for (const std::string &b : ks[k].inputs)
      touch[b].push_back(k);
    for (const std::string &b : ks[k].outputs)
      touch[b].push_back(k);
  }
  auto allBefore = [&](const std::string &a, const std::string &b) {
    const auto &ta = touch[a], &tb = touch[b];
    if (ta.empty() || tb.empty())
      return false; // unknown lifetime
    for (size_t x : ta)
      for (size_t y : tb)
        if (!reach[x][y])
          return false;
    return true;
  };

  size_t sum = 0;
  EXPECT_EQ(plan.offset.size(), temps.size());
  for (const auto &[name, bytes] : temps) {
    sum += bytes;
    auto it = plan.offset.find(name);
    if (it == plan.offset.end()) {
      ADD_FAILURE() << "no offset for '" << name << "'";
      continue;
    }
    EXPECT_EQ(it->second % 64, 0u) << name << " at " << it->second;
    EXPECT_GE(plan.arenaBytes, it->second + bytes) << name;
  }
  EXPECT_EQ(plan.separateBytes, sum);

  int overlaps = 0;
  for (auto a = temps.begin(); a != temps.end(); ++a)
    for (auto b = std::next(a); b != temps.end(); ++b) {
      if (!plan.offset.count(a->first) || !plan.offset.count(b->first))
        continue;
      size_t a0 = plan.offset.at(a->first), a1 = a0 + a->second;
      size_t b0 = plan.offset.at(b->first), b1 = b0 + b->second;
      bool disjoint = a1 <= b0 || b1 <= a0 || a->second == 0 || b->second == 0;
      if (disjoint || allBefore(a->first, b->first) ||
          allBefore(b->first, a->first))
        continue;
      ++overlaps;
      ADD_FAILURE() << "unordered temporaries '" << a->first << "' [" << a0
                    << ", " << a1 << ") and '" << b->first << "' [" << b0
                    << ", " << b1 << ") overlap";
    }
  return overlaps;
}

bool disjoint(const BufferPlan &p, const Temps &t, const std::string &a,
              const std::string &b) {
  size_t a0 = p.offset.at(a), b0 = p.offset.at(b);
  return a0 + t.at(a) <= b0 || b0 + t.at(b) <= a0;
}

TEST(BufferPlan, ChainReusesMemory) {
  // a -> k0 -> t1 -> k1 -> t2 -> k2 -> t3 -> k3 -> d
  Kernels ks = {K({"a"}, {"t1"}), K({"t1"}, {"t2"}), K({"t2"}, {"t3"}),
                K({"t3"}, {"d"})};
  Temps temps = {{"t1", 1024}, {"t2", 1024}, {"t3", 1024}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_EQ(p.separateBytes, 3072u);
  EXPECT_LT(p.arenaBytes, p.separateBytes);
  EXPECT_EQ(p.arenaBytes, 2048u);
  EXPECT_EQ(p.offset.at("t1"), p.offset.at("t3"));
  EXPECT_TRUE(disjoint(p, temps, "t1", "t2"));
  EXPECT_TRUE(disjoint(p, temps, "t2", "t3"));
}

TEST(BufferPlan, LongChainPingPongs) {
  Kernels ks;
  Temps temps;
  const int n = 12;
  auto name = [](int i) { return "t" + std::string(i < 10 ? "0" : "") + std::to_string(i); };
  ks.push_back(K({"x"}, {name(0)}));
  temps[name(0)] = 4096;
  for (int i = 1; i < n; ++i) {
    ks.push_back(K({name(i - 1)}, {name(i)}));
    temps[name(i)] = 4096;
  }
  ks.push_back(K({name(n - 1)}, {"y"}));
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_EQ(p.arenaBytes, 2u * 4096);
}

TEST(BufferPlan, ParallelBranchesDoNotShare) {
  // k0 writes t0; k1 and k2 both read it and may run concurrently, each
  // writing its own temporary; k3 reads both.
  Kernels ks = {K({"x"}, {"t0"}), K({"t0"}, {"t1"}), K({"t0"}, {"t2"}),
                K({"t1", "t2"}, {"y"})};
  Temps temps = {{"t0", 512}, {"t1", 256}, {"t2", 256}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_TRUE(disjoint(p, temps, "t1", "t2"));
  EXPECT_TRUE(disjoint(p, temps, "t0", "t1"));
  EXPECT_TRUE(disjoint(p, temps, "t0", "t2"));
  EXPECT_EQ(p.arenaBytes, 1024u);
}

TEST(BufferPlan, BranchesOfUnequalLength) {
  // Branch A: k1 -> a1 -> k2 -> a2; branch B: k3 -> b1 (concurrent with all
  // of A); a1 and a2 are ordered, but neither is ordered with b1.
  Kernels ks = {K({"x"}, {"t0"}), K({"t0"}, {"a1"}), K({"a1"}, {"a2"}),
                K({"t0"}, {"b1"}), K({"a2", "b1"}, {"y"})};
  Temps temps = {{"t0", 64}, {"a1", 300}, {"a2", 200}, {"b1", 100}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_TRUE(disjoint(p, temps, "a1", "b1"));
  EXPECT_TRUE(disjoint(p, temps, "a2", "b1"));
}

TEST(BufferPlan, AReaderStillRunningKeepsItsInputApart) {
  // t0 is read by k1 and k2, which are unordered; k3 depends on k1 only and
  // writes t3: while k2 may still read t0, t3 must not overwrite it.
  Kernels ks = {K({"x"}, {"t0"}), K({"t0"}, {"t1"}), K({"t0"}, {"t2"}),
                K({"t1"}, {"t3"}), K({"t2", "t3"}, {"y"})};
  Temps temps = {{"t0", 1024}, {"t1", 64}, {"t2", 64}, {"t3", 1024}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_TRUE(disjoint(p, temps, "t0", "t3"));
}

TEST(BufferPlan, ReadAndWriteOfOneKernelDoNotAlias) {
  // k1 reads t1 and writes t2: t2 must not be placed over t1, whichever is
  // larger.
  for (size_t s1 : {128u, 4096u})
    for (size_t s2 : {128u, 4096u}) {
      SCOPED_TRACE(std::to_string(s1) + " -> " + std::to_string(s2));
      Kernels ks = {K({"x"}, {"t1"}), K({"t1", "w"}, {"t2"}), K({"t2"}, {"y"})};
      Temps temps = {{"t1", s1}, {"t2", s2}};
      BufferPlan p = plan(ks, temps);
      EXPECT_EQ(checkPlan(ks, temps, p), 0);
      EXPECT_TRUE(disjoint(p, temps, "t1", "t2"));
    }
}

TEST(BufferPlan, OutputsOfOneKernelDoNotAlias) {
  Kernels ks = {K({"x"}, {"t1", "t2"}), K({"t1"}, {"y"}), K({"t2"}, {"z"})};
  Temps temps = {{"t1", 256}, {"t2", 256}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_TRUE(disjoint(p, temps, "t1", "t2"));
}

TEST(BufferPlan, LateReaderExtendsLifetime) {
  // t0 is read again by k3: it stays live across t1 and t2, while t3 (written
  // by k3) may reuse t1's memory.
  Kernels ks = {K({"x"}, {"t0"}), K({"t0"}, {"t1"}), K({"t1"}, {"t2"}),
                K({"t0", "t2"}, {"t3"}), K({"t3"}, {"y"})};
  Temps temps = {{"t0", 256}, {"t1", 256}, {"t2", 256}, {"t3", 256}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_TRUE(disjoint(p, temps, "t0", "t1"));
  EXPECT_TRUE(disjoint(p, temps, "t0", "t2"));
  EXPECT_TRUE(disjoint(p, temps, "t0", "t3"));
  EXPECT_EQ(p.arenaBytes, 768u);
}

TEST(BufferPlan, AlignmentAndOddSizes) {
  Kernels ks = {K({"x"}, {"a", "b", "c", "z"}), K({"a", "b", "c", "z"}, {"y"})};
  Temps temps = {{"a", 1}, {"b", 65}, {"c", 100}, {"z", 0}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_EQ(p.separateBytes, 166u);
  for (const auto &[name, off] : p.offset)
    EXPECT_EQ(off % 64, 0u) << name;
  // All live together: each rounded up to 64 bytes, zero-size taking 64.
  EXPECT_EQ(p.arenaBytes, 64u + 128u + 128u + 64u);
}

TEST(BufferPlan, UntouchedTemporaryKeptApart) {
  Kernels ks = {K({"x"}, {"t1"}), K({"t1"}, {"t2"}), K({"t2"}, {"y"})};
  Temps temps = {{"t1", 64}, {"t2", 64}, {"orphan", 64}};
  BufferPlan p = plan(ks, temps);
  EXPECT_EQ(checkPlan(ks, temps, p), 0);
  EXPECT_TRUE(disjoint(p, temps, "orphan", "t1"));
  EXPECT_TRUE(disjoint(p, temps, "orphan", "t2"));
}

TEST(BufferPlan, EmptyInputs) {
  BufferPlan p = plan({}, {});
  EXPECT_EQ(p.arenaBytes, 0u);
  EXPECT_EQ(p.separateBytes, 0u);
  EXPECT_TRUE(p.offset.empty());
  // Kernels without temporaries.
  p = plan({K({"x"}, {"y"}), K({"y"}, {"z"})}, {});
  EXPECT_EQ(p.arenaBytes, 0u);
}

/// Random kernel graphs in execution order: each kernel reads a few earlier
/// buffers (temporaries or entry inputs) and writes one to three new ones,
/// some of them entry outputs (not temporaries).
TEST(BufferPlan, RandomGraphsExhaustive) {
  const size_t sizes[] = {1, 63, 64, 100, 256, 1000, 4096, 10000};
  int shared = 0;
  for (uint64_t seed = 0; seed < 400; ++seed) {
    std::mt19937_64 gen(seed);
    auto pick = [&](size_t n) {
      return size_t(std::uniform_int_distribution<size_t>(0, n - 1)(gen));
    };
    const size_t nk = 2 + pick(14);
    Kernels ks;
    Temps temps;
    std::vector<std::string> buffers = {"x", "w"};
    for (size_t k = 0; k < nk; ++k) {
      PlanKernel pk;
      size_t nin = pick(4);
      std::set<std::string> ins;
      for (size_t i = 0; i < nin; ++i)
        ins.insert(buffers[pick(buffers.size())]);
      pk.inputs.assign(ins.begin(), ins.end());
      size_t nout = 1 + pick(3);
      for (size_t o = 0; o < nout; ++o) {
        std::string name = "k" + std::to_string(k) + "o" + std::to_string(o);
        pk.outputs.push_back(name);
        buffers.push_back(name);
        if (pick(5) != 0)
          temps[name] = sizes[pick(std::size(sizes))];
      }
      ks.push_back(std::move(pk));
    }
    SCOPED_TRACE("seed " + std::to_string(seed));
    BufferPlan p = plan(ks, temps);
    ASSERT_EQ(checkPlan(ks, temps, p), 0);
    BufferPlan again = plan(ks, temps);
    EXPECT_EQ(again.offset, p.offset);
    EXPECT_EQ(again.arenaBytes, p.arenaBytes);
    size_t rounded = 0;
    for (const auto &[name, bytes] : temps)
      rounded += (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    EXPECT_LE(p.arenaBytes, rounded);
    shared += p.arenaBytes < rounded;
  }
  // The graphs are varied enough that sharing happens often.
  EXPECT_GT(shared, 100);
}

} // namespace
