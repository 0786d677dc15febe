//===- BlockTopK.cpp - Quest-style page selection -------------------------===//
//
// Pages of `page` keys with element-wise min/max summaries; a page's score is
// sum_{h in group} sum_d max(q_d min_d, q_d max_d); the budget/page best
// pages per KV head are kept.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

#include "deltaflow/Dialect/Attn/IR/AttnOps.h"

namespace deltaflow::sparsity {

Policy blockTopKPolicy() {
  Policy p;
  p.name = "block-topk";
  p.summary = "block top-k (Quest): best budget/page pages per KV head";
  p.knobs = {"budget", "page", "sinks", "window", "chunk"};
  p.perKvHead = true;
  p.check = [](const Params &ps) {
    std::string why = checkIntParam(ps, "page", 1, 4096);
    if (why.empty())
      why = checkIntParam(ps, "budget", paramInt(ps, "page"), int64_t(1) << 24);
    return why.empty() ? checkCommonParams(ps) : why;
  };
  p.slots = [](const Params &ps) {
    int64_t page = paramInt(ps, "page");
    return paramInt(ps, "budget") / page * page;
  };
  p.toAttr = [](mlir::MLIRContext *ctx, const Params &ps) -> mlir::Attribute {
    return mlir::deltaflow::attn::BlockTopKAttr::get(
        ctx, paramInt(ps, "budget"), paramInt(ps, "page"),
        paramInt(ps, "sinks"), paramInt(ps, "window"), paramInt(ps, "chunk"));
  };
  p.fromAttr = [](mlir::Attribute a) -> std::optional<Params> {
    auto t = llvm::dyn_cast<mlir::deltaflow::attn::BlockTopKAttr>(a);
    if (!t)
      return std::nullopt;
    return Params{{"budget", double(t.getBudget())},
                  {"page", double(t.getPage())},
                  {"sinks", double(t.getSinks())},
                  {"window", double(t.getWindow())},
                  {"chunk", double(t.getChunk())}};
  };
  return p;
}

} // namespace deltaflow::sparsity
