//===- Adaptive.cpp - adaptive top-p selection per KV-head group ----------===//
//
// Same scores as TokenSelect; per (KV head, chunk) the smallest set whose
// estimated softmax mass reaches p, clamped to [min_budget, max_budget].
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"

#include <cstdio>

namespace deltaflow::sparsity {

Policy adaptivePolicy() {
  Policy p;
  p.name = "adaptive";
  p.summary = "adaptive top-p: smallest set reaching mass p per KV-head group";
  p.knobs = {"p", "min-budget", "max-budget", "sinks", "window", "chunk"};
  p.perKvHead = true;
  p.check = [](const Params &ps) -> std::string {
    double mass = ps.count("p") ? ps.at("p") : 0.0;
    if (!(mass > 0.0 && mass <= 1.0))
      {
      char buf[64];
      std::snprintf(buf, sizeof buf, "p must be in (0, 1], got %g", mass);
      return buf;
    }
    std::string why = checkIntParam(ps, "min-budget", 1, int64_t(1) << 24);
    if (why.empty())
      why = checkIntParam(ps, "max-budget", paramInt(ps, "min-budget"),
                          int64_t(1) << 24);
    return why.empty() ? checkCommonParams(ps) : why;
  };
  p.slots = [](const Params &ps) { return paramInt(ps, "max-budget"); };
  p.toAttr = [](mlir::MLIRContext *ctx, const Params &ps) -> mlir::Attribute {
    return mlir::deltaflow::attn::AdaptiveAttr::get(
        ctx, llvm::APFloat(ps.at("p")), paramInt(ps, "min-budget"),
        paramInt(ps, "max-budget"), paramInt(ps, "sinks"),
        paramInt(ps, "window"), paramInt(ps, "chunk"));
  };
  p.fromAttr = [](mlir::Attribute a) -> std::optional<Params> {
    auto t = llvm::dyn_cast<mlir::deltaflow::attn::AdaptiveAttr>(a);
    if (!t)
      return std::nullopt;
    return Params{{"p", t.getP().convertToDouble()},
                  {"min-budget", double(t.getMinBudget())},
                  {"max-budget", double(t.getMaxBudget())},
                  {"sinks", double(t.getSinks())},
                  {"window", double(t.getWindow())},
                  {"chunk", double(t.getChunk())}};
  };
  return p;
}

} // namespace deltaflow::sparsity
