//===- Window.cpp - window + sinks (StreamingLLM) -------------------------===//
//
// Selects nothing: attn.sparse_attention without indices sees the first
// `sinks` keys and a per-query sliding window, `p - j <= window`
// (FlashAttention's window_size=(window, 0)); `chunk` does not change it.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

namespace deltaflow::sparsity {

Policy windowPolicy() {
  Policy p;
  p.name = "window";
  p.summary = "window + sinks: the first `sinks` keys and the local window";
  p.knobs = {"sinks", "window", "chunk"};
  p.selects = false;
  p.check = checkCommonParams;
  p.slots = [](const Params &) { return int64_t(0); };
  return p;
}

} // namespace deltaflow::sparsity
