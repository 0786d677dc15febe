//===- ContextParallel.cpp - key shards and the LSE merge ------------------===//

#include "deltaflow/Runtime/ContextParallel.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

namespace deltaflow::rt {

std::pair<int64_t, int64_t> keyShard(int64_t nk, int rank, int ranks) {
  if (ranks < 1 || rank < 0 || rank >= ranks || nk < 0)
    throw std::invalid_argument("keyShard: rank " + std::to_string(rank) +
                                " of " + std::to_string(ranks) + " over " +
                                std::to_string(nk) + " keys");
  int64_t base = nk / ranks, extra = nk % ranks;
  int64_t begin = rank * base + std::min<int64_t>(rank, extra);
  return {begin, begin + base + (rank < extra ? 1 : 0)};
}

void mergeAttentionPartials(const std::vector<AttentionPartial> &parts,
                            int64_t rows, int64_t dv, float *out, float *lse) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<double> acc(size_t(dv > 0 ? dv : 0));
  for (int64_t r = 0; r < rows; ++r) {
    double m = -inf;
    bool isNan = false;
    for (const AttentionPartial &p : parts) {
      double l = p.lse ? double(p.lse[r]) : -inf;
      isNan |= std::isnan(l);
      m = std::max(m, l);
    }
    if (isNan || m == inf) {
      // A NaN or +inf score: the row is NaN, as the unsharded kernel's.
      if (out)
        for (int64_t e = 0; e < dv; ++e)
          out[r * dv + e] = float(nan);
      if (lse)
        lse[r] = float(nan);
      continue;
    }
    if (m == -inf) {
      if (out)
        for (int64_t e = 0; e < dv; ++e)
          out[r * dv + e] = float(nan);
      if (lse)
        lse[r] = float(-inf);
      continue;
    }
    double sum = 0;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (const AttentionPartial &p : parts) {
      double l = p.lse ? double(p.lse[r]) : -inf;
      if (l == -inf)
        continue; // weighs 0: its output (NaN for a row with no key) is not read
      double w = std::exp(l - m);
      sum += w;
      if (out && p.out)
        for (int64_t e = 0; e < dv; ++e)
          acc[size_t(e)] += w * double(p.out[r * dv + e]);
    }
    if (out)
      for (int64_t e = 0; e < dv; ++e)
        out[r * dv + e] = float(acc[size_t(e)] / sum);
    if (lse)
      lse[r] = float(m + std::log(sum));
  }
}

} // namespace deltaflow::rt
