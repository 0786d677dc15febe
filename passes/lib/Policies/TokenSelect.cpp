//===- TokenSelect.cpp - TokenSelect: soft vote + shared top-k ------------===//
//
// Per head s_h(j) = qbar_h . k_{h/G}(j); S(j) = sum_h softmax_j(s_h(j)/sqrt(D)); one
// shared top-`budget` set per chunk. The kernel: compiler/Halide/Selection/.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"

namespace deltaflow::sparsity {

Policy tokenSelectPolicy() {
  Policy p;
  p.name = "token-select";
  p.summary = "TokenSelect: per-head scores, soft vote, shared top-k per chunk";
  p.knobs = {"budget", "sinks", "window", "chunk"};
  p.check = [](const Params &ps) {
    std::string why = checkIntParam(ps, "budget", 1, int64_t(1) << 24);
    return why.empty() ? checkCommonParams(ps) : why;
  };
  p.slots = [](const Params &ps) { return paramInt(ps, "budget"); };
  p.toAttr = [](mlir::MLIRContext *ctx, const Params &ps) -> mlir::Attribute {
    return mlir::deltaflow::attn::TokenSelectAttr::get(
        ctx, paramInt(ps, "budget"), paramInt(ps, "sinks"),
        paramInt(ps, "window"), paramInt(ps, "chunk"));
  };
  p.fromAttr = [](mlir::Attribute a) -> std::optional<Params> {
    auto t = llvm::dyn_cast<mlir::deltaflow::attn::TokenSelectAttr>(a);
    if (!t)
      return std::nullopt;
    return Params{{"budget", double(t.getBudget())},
                  {"sinks", double(t.getSinks())},
                  {"window", double(t.getWindow())},
                  {"chunk", double(t.getChunk())}};
  };
  return p;
}

} // namespace deltaflow::sparsity
