//===- Window.cpp - window + sinks ----------------------------------------===//
//
// window + sinks (StreamingLLM): every query sees the first `sinks` keys and
// the keys within `window` positions before it (FlashAttention's
// window_size=(window, 0)). Nothing is selected, so no kernel: the sparse
// attention kernel reads the pattern from sinks and window alone.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

namespace deltaflow::sparsity {

Policy windowPolicy() {
  Policy p;
  p.name = "window";
  p.summary = "window + sinks: the first `sinks` keys and the local window";
  p.params = commonParams();
  p.selects = false;
  p.slots = [](const Params &) { return int64_t(0); };
  return p;
}

} // namespace deltaflow::sparsity
