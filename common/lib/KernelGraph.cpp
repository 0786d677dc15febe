//===- KernelGraph.cpp - temporaries sharing memory by liveness -----------===//

#include "deltaflow/Common/KernelGraph.h"

#include <algorithm>
#include <cstdint>

namespace deltaflow {

BufferPlan planBuffers(const std::vector<PlanKernel> &kernels,
                       const std::map<std::string, size_t> &temporaries) {
  const size_t K = kernels.size();
  // before[i][j]: kernel i happens-before kernel j (transitive closure of
  // the dependencies; kernels are in execution order).
  std::vector<std::vector<uint8_t>> before(K, std::vector<uint8_t>(K, 0));
  for (size_t j = 0; j < K; ++j)
    for (size_t i : kernels[j].deps) {
      if (i >= j)
        continue; // not a valid order: no sharing through this edge
      before[i][j] = 1;
      for (size_t h = 0; h < i; ++h)
        if (before[h][i])
          before[h][j] = 1;
    }

  struct Use {
    std::vector<size_t> touch, write;
  };
  std::map<std::string, Use> uses;
  for (size_t k = 0; k < K; ++k) {
    for (const std::string &in : kernels[k].inputs)
      if (temporaries.count(in))
        uses[in].touch.push_back(k);
    for (const std::string &out : kernels[k].outputs)
      if (temporaries.count(out)) {
        uses[out].touch.push_back(k);
        uses[out].write.push_back(k);
      }
  }
  auto allBefore = [&](const Use &a, const Use &b) {
    for (size_t x : a.touch)
      for (size_t y : b.write)
        if (!before[x][y])
          return false;
    return true;
  };
  auto mayShare = [&](const std::string &a, const std::string &b) {
    const Use &ua = uses[a], &ub = uses[b];
    if (ua.touch.empty() || ub.touch.empty())
      return false; // unknown lifetime: keep apart
    return allBefore(ua, ub) || allBefore(ub, ua);
  };

  std::vector<std::pair<std::string, size_t>> order(temporaries.begin(),
                                                    temporaries.end());
  std::stable_sort(order.begin(), order.end(),
                   [](const auto &a, const auto &b) { return a.second > b.second; });
  BufferPlan plan;
  struct Placed {
    std::string name;
    size_t begin, end;
  };
  std::vector<Placed> placed;
  for (const auto &[name, bytes] : order) {
    size_t size = (std::max<size_t>(bytes, 1) + 63) / 64 * 64;
    plan.separateBytes += bytes;
    std::vector<std::pair<size_t, size_t>> busy;
    for (const Placed &p : placed)
      if (!mayShare(name, p.name))
        busy.emplace_back(p.begin, p.end);
    std::sort(busy.begin(), busy.end());
    size_t at = 0;
    for (const auto &[b, e] : busy) {
      if (at + size <= b)
        break;
      at = std::max(at, e);
    }
    placed.push_back({name, at, at + size});
    plan.offset[name] = at;
    plan.arenaBytes = std::max(plan.arenaBytes, at + size);
  }
  return plan;
}

} // namespace deltaflow
