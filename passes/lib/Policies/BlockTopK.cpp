//===- BlockTopK.cpp - Quest-style block top-k ----------------------------===//
//
// Block top-k (Quest, Tang et al., 2024): candidates [sinks, sinks + n) are
// cut into pages of `page` keys with element-wise min/max key summaries
// (computed once per call over all pages). score(page, g) = sum_{h in g}
// sum_d max(qbar_hd min_d, qbar_hd max_d); the budget/page best pages per
// KV head are kept and expanded to keys.
// Attribute: #attn.block_topk<budget, page, sinks, window, chunk>.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

namespace deltaflow::sparsity {

namespace {

void buildBlockTopKKernel(SelectionBuild &sb) {
  const int G = sb.groupSize();
  const int page = int(sb.param("page"));
  const int pages = int(sb.spec.slots) / page;
  const int sinks = int(sb.spec.sinks);
  Var d("d"), pg("pg"), hk("hk"), c = sb.c, hs = sb.hs, b = sb.b, t = sb.t;

  RDom rp(0, page, "rp");
  Expr key = sinks + pg * page + rp;
  rp.where(key < sb.nk());
  Expr kv = sb.key(d, Halide::min(key, sb.nk() - 1), hk, b);
  Func kmin("bt_kmin"), kmax("bt_kmax");
  kmin(d, pg, hk, b) = 3.0e38f;
  kmin(d, pg, hk, b) = Halide::min(kmin(d, pg, hk, b), kv);
  kmax(d, pg, hk, b) = -3.0e38f;
  kmax(d, pg, hk, b) = Halide::max(kmax(d, pg, hk, b), kv);

  Func qbar = chunkMeanQuery(sb);
  RDom rdg(0, int(sb.spec.d), 0, G, "rdg");
  Expr qv = qbar(rdg.x, hk * G + rdg.y, c, b);
  Func score("bt_score"); // (pg, hk, c, b)
  score(pg, hk, c, b) = 0.0f;
  score(pg, hk, c, b) += Halide::max(qv * kmin(rdg.x, pg, hk, b),
                                     qv * kmax(rdg.x, pg, hk, b));
  Func pkey("bt_key");
  pkey(pg, c, hs, b) = orderedKey(score(pg, hs, c, b));

  Expr n = sb.candidateCount(c);
  Expr nPages = (n + page - 1) / page;
  Expr maxPages = (sb.maxCandidates() + page - 1) / page;
  TopK tk = topK(pkey, nPages, Expr(pages), pages, maxPages, {c, hs, b}, "bt");
  Expr chosen = tk.idx(t / page, c, hs, b);
  Expr tok = sinks + chosen * page + t % page;
  sb.indices(t, c, hs, b) =
      Halide::select(chosen >= 0 && tok < sinks + n, tok, -1);

  // Summaries: one pass over K, parallel over KV heads x page blocks.
  const int vd = vectorWidthFor(sb.target, sb.spec.d);
  Var po("po"), pi("pi"), tile("tile");
  for (Func *f : {&kmin, &kmax}) {
    f->compute_root()
        .split(pg, po, pi, 64, Halide::TailStrategy::GuardWithIf)
        .reorder(d, pi, po, hk, b)
        .fuse(po, hk, tile)
        .parallel(tile)
        .vectorize(d, vd);
    f->update()
        .split(pg, po, pi, 64, Halide::TailStrategy::GuardWithIf)
        .reorder(d, rp, pi, po, hk, b)
        .fuse(po, hk, tile)
        .parallel(tile)
        .vectorize(d, vd);
  }
  qbar.compute_root().parallel(qbar.args()[1]);
  score.compute_root()
      .split(pg, po, pi, 256, Halide::TailStrategy::GuardWithIf)
      .fuse(po, hk, tile)
      .parallel(tile);
  score.update()
      .split(pg, po, pi, 256, Halide::TailStrategy::GuardWithIf)
      .reorder(rdg.x, rdg.y, pi, po, hk)
      .fuse(po, hk, tile)
      .parallel(tile);
  scheduleTopK(tk, indicesPerTask(sb));
}

} // namespace

Policy blockTopKPolicy() {
  Policy p;
  p.name = "block-topk";
  p.summary = "block top-k (Quest): best budget/page pages per KV head";
  p.params = withCommonParams({{"page", 1, 4096}, {"budget", 1, kMaxBudget}});
  p.check = [](const Params &ps) -> std::string {
    if (paramInt(ps, "budget") < paramInt(ps, "page"))
      return "budget (" + std::to_string(paramInt(ps, "budget")) +
             ") must hold at least one page of " +
             std::to_string(paramInt(ps, "page"));
    return "";
  };
  p.perKvHead = true;
  p.slots = [](const Params &ps) {
    int64_t page = paramInt(ps, "page");
    return paramInt(ps, "budget") / page * page;
  };
  p.toAttr = [](mlir::MLIRContext *ctx, const Params &ps) -> mlir::Attribute {
    return mlir::deltaflow::attn::BlockTopKAttr::get(
        ctx, paramInt(ps, "budget"), paramInt(ps, "page"),
        paramInt(ps, "sinks"), paramInt(ps, "window"), paramInt(ps, "chunk"));
  };
  p.buildKernel = buildBlockTopKKernel;
  return p;
}

} // namespace deltaflow::sparsity
