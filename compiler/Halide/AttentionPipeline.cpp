//===- AttentionPipeline.cpp - THE ALGORITHM for attention ----------------===//
//
// Exact attention without materialising the Nq x Nk score matrix.
//  * Prefill: per (query tile, KV head, batch), an online-softmax reduction
//    over key blocks. A tile holds Tq query rows of all G = Hq/Hkv query
//    heads sharing the KV head, so each K/V block is read once for Tq*G rows.
//    With `causal` the key-block RDom is bounded by the query tile.
//  * Decode: split-K over key chunks (flash-decoding); per-chunk partial
//    (max, sum, P.V) are merged by log-sum-exp.
// Non-finite scores follow IEEE softmax over the keys a row sees (as NumPy
// and PyTorch compute it): a +inf or NaN score among them makes the row (and
// its LSE) NaN, a -inf score weighs 0, and a row whose scores are all -inf is
// NaN. Keys a row does not see never matter. This holds for every length
// and tile, because the state carries it in its max rather than in NaN
// arithmetic, which Halide's fast-math flags do not keep (see maskedScore).
// Schedules live in compiler/schedules/<target>.cpp.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/AttentionPipeline.h"
#include "deltaflow/Compiler/Float16.h"

#include <cstring>
#include <limits>

namespace deltaflow::compiler {

namespace {
/// Score of a key the row does not see, or whose score is -inf: float's
/// lowest value, so every finite score is at or above it.
constexpr float kMasked = -std::numeric_limits<float>::max();
/// Score of a seen key whose score is +inf or NaN: float's largest value.
/// A row max of kPoison (some seen score was +inf/NaN) or of kMasked (no
/// seen score above -inf) makes the row NaN at the end (poisonRow). Finite
/// sentinels, since under fast-math LLVM may fold infinities and NaN away.
/// (A finite score of exactly +-FLT_MAX counts as +inf / -inf.)
constexpr float kPoison = std::numeric_limits<float>::max();

Halide::Expr floatBits(const Halide::Expr &x) {
  return Halide::reinterpret(Halide::UInt(32), x);
}
Halide::Expr u32(uint32_t v) {
  return Halide::Internal::make_const(Halide::UInt(32), uint64_t(v));
}
uint32_t bitsOf(float f) {
  uint32_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

/// The score the softmax uses for a key: `dot` where the row sees the key
/// and `dot` is finite; kMasked where it does not see it or `dot` is -inf;
/// kPoison where it sees a +inf or NaN score. Tested on the bits.
Halide::Expr maskedScore(const Halide::Expr &dot, const Halide::Expr &visible) {
  Halide::Expr bits = floatBits(dot);
  Halide::Expr finite = (bits & u32(0x7f800000)) != u32(0x7f800000);
  Halide::Expr negInf = bits == u32(0xff800000);
  return Halide::select(!visible || negInf, kMasked, finite, dot, kPoison);
}

/// `x`, or NaN (its sign kept) when the row's max is a sentinel: a seen
/// score was +inf or NaN, or none was above -inf. On the bits: LLVM 14
/// (Halide 14's) does not reason about integer tests of a float's bits under
/// fast-math, as it does about `x != x` (a newer LLVM's is.fpclass folding
/// could; docs/hardening.md).
Halide::Expr poisonRow(const Halide::Expr &x, const Halide::Expr &rowMax);

/// The LSE of a row, as torch.logsumexp gives it: NaN when a seen score was
/// +inf or NaN, -inf when no seen score was above -inf (the sum is 0), so
/// that a merge by LSE gives such a partial no weight.
Halide::Expr rowLse(const Halide::Expr &lse, const Halide::Expr &rowMax) {
  Halide::Expr m = floatBits(rowMax);
  Halide::Expr bits = Halide::select(
      m == u32(bitsOf(kMasked)), u32(0xff800000),
      floatBits(lse) |
          Halide::select(m == u32(bitsOf(kPoison)), u32(0x7fc00000), u32(0)));
  return Halide::reinterpret(Halide::Float(32), bits);
}

Halide::Expr poisonRow(const Halide::Expr &x, const Halide::Expr &rowMax) {
  Halide::Expr m = floatBits(rowMax);
  Halide::Expr bad = m == u32(bitsOf(kPoison)) || m == u32(bitsOf(kMasked));
  return Halide::reinterpret(
      Halide::Float(32),
      floatBits(x) | Halide::select(bad, u32(0x7fc00000), u32(0)));
}
/// exp of a non-positive argument; clamped because fast_exp returns NaN far
/// below its range, and at -80 so that masked keys give a tiny normal
/// number (exp(-88) is denormal, and denormal arithmetic is slow on x86).
Halide::Expr expNonPositive(const Halide::Expr &x) {
  return Halide::fast_exp(Halide::max(x, -80.0f));
}
Halide::Expr expExact(const Halide::Expr &x) {
  return Halide::exp(Halide::max(x, -80.0f));
}
/// The softmax weight of a key with score `s` (a maskedScore) against the
/// block max `m`: exactly 0 for a key the row does not see or whose score is
/// -inf, otherwise exp(s - m) kept at or above e^-80.
Halide::Expr keyWeight(const Halide::Expr &s, const Halide::Expr &m) {
  return Halide::select(s == kMasked, 0.0f, expNonPositive(s - m));
}
/// `p v` for the P.V sum, `p` a keyWeight: 0 where p is 0 (the row does not
/// see the key, or its score is -inf), so that such a key's V never reaches
/// the row, even a non-finite one (0 * inf would be NaN); elsewhere p >=
/// e^-80, so a non-finite V gives +-inf or NaN by IEEE rules, never an
/// underflow's 0 * inf.
Halide::Expr weighedValue(const Halide::Expr &p, const Halide::Expr &v) {
  return Halide::select(p > 0.0f, p * v, 0.0f);
}
/// K and V take their stored element type (f16 or f32) from the spec; every
/// read casts to float, so accumulation stays f32.
void setKvTypes(AttentionIO &io, const AttentionSpec &spec) {
  Halide::Type t = halideType(spec.kvDtype);
  io.k = Halide::ImageParam(t, 4, "k");
  io.v = Halide::ImageParam(t, 4, "v");
}
} // namespace

void addAttentionRequirements(Halide::Pipeline &pipeline,
                              const AttentionSpec &spec, const AttentionIO &io) {
  // With the default offset (queries are the last Nq keys) every causal query
  // row must see at least one key.
  if (spec.causal && !spec.offset) {
    Halide::Expr nq = io.q.dim(1).extent(), nk = io.k.dim(1).extent();
    pipeline.add_requirement(nk >= nq,
                             "causal attention with the default offset needs "
                             "at least as many keys as queries; got Nq =",
                             nq, "and Nk =", nk);
  }
}

Halide::Expr AttentionIO::queryPosition(const AttentionSpec &spec,
                                        const Halide::Expr &row) const {
  Halide::Expr nq = q.dim(1).extent(), nk = k.dim(1).extent();
  Halide::Expr first = spec.offset ? Halide::Expr(int(*spec.offset)) : nk - nq;
  return first + row;
}

Halide::Expr AttentionIO::keyVisible(const AttentionSpec &spec,
                                     const Halide::Expr &key,
                                     const Halide::Expr &row) const {
  Halide::Expr visible = key < k.dim(1).extent();
  if (spec.causal)
    visible = visible && key <= queryPosition(spec, row);
  return visible;
}

std::vector<Halide::Func> AttentionIO::outputs() const {
  std::vector<Halide::Func> fs{out};
  if (lse.defined())
    fs.push_back(lse);
  return fs;
}

std::vector<Halide::Argument> PrefillPipeline::arguments() const {
  std::vector<Halide::Argument> args = AttentionIO::arguments();
  if (form.kind == PrefillForm::Sparse && form.sparse.slots > 0)
    args.push_back(indices);
  if (form.kind == PrefillForm::StridedRows)
    args.push_back(promptRowsAfter);
  return args;
}

namespace {
/// The rows of the Delta correction for `nq` query rows: `strided` rows
/// 0, s, 2s, ..., and the `tail`. The tail belongs to the prompt, not to
/// each chunk (docs/design.md, "Δ-correction"): it is the prompt's last
/// nq mod s + max(128, s) rows, of which this call holds those not among
/// the `after` rows that follow it. The call that ends the prompt (after =
/// 0) has min(nq, nq mod s + max(128, s)); a call far from the end, none.
struct DeltaRows {
  Halide::Expr strided, tail;
  DeltaRows(const Halide::Expr &nq, int s, const Halide::Expr &after)
      : strided(geometry::deltaStridedRows(nq, s)),
        tail(geometry::deltaTailRows(nq, s, after)) {}
};
/// Key of slot `slot` of attn.sparse_attention: the sinks [0, sinks), then
/// the selection of chunk `chunk` (indices (t, c, hs, b)), then the local
/// window from `s0 - window` on; -1 for a slot at or past `nSlots`, an
/// unused selection slot, or a window key among the sinks. Shared by the
/// prefill (a query tile) and decode (one row) forms.
Halide::Expr sparseSlotKey(const SparseSpec &sp, const Halide::ImageParam &indices,
                           const Halide::Expr &slot, const Halide::Expr &s0,
                           const Halide::Expr &chunk, const Halide::Expr &hk,
                           const Halide::Expr &b, const Halide::Expr &nSlots) {
  const int sinks = int(sp.sinks), sel = int(sp.slots), win = int(sp.window);
  Halide::Expr local = s0 - win + (slot - sinks - sel);
  Halide::Expr picked = -1;
  if (sel > 0) {
    Halide::Expr hs = sp.selHeads == 1 ? Halide::Expr(0) : hk;
    picked = indices(Halide::clamp(slot - sinks, 0, sel - 1),
                     Halide::min(chunk, indices.dim(1).extent() - 1), hs, b);
  }
  return Halide::select(slot < sinks, slot, slot < sinks + sel, picked,
                        slot < nSlots && local >= sinks, local, -1);
}
} // namespace

PrefillPipeline buildPrefillAttention(const AttentionSpec &spec,
                                      const PrefillTiles &tiles,
                                      const PrefillForm &form) {
  using Halide::Expr;
  using Halide::Tuple;
  PrefillPipeline P;
  setKvTypes(P, spec);
  P.tiles = tiles;
  P.form = form;
  Halide::Var &d = P.d, &e = P.e, &qi = P.qi, &qt = P.qt, &g = P.g, &hk = P.hk,
              &b = P.b, &jj = P.jj, &kb = P.kb, &i = P.i, &h = P.h;
  const int G = int(spec.hq / spec.hkv);
  const int Tq = tiles.queryTile, Bk = tiles.keyBlock;
  Expr nq = P.q.dim(1).extent(), nk = P.k.dim(1).extent();

  // Output row -> query row. Strided rows: 0, s, 2s, ... then the last T.
  std::function<Expr(Expr)> queryRow = [](Expr r) { return r; };
  Expr rowUsed = Halide::cast<bool>(true);
  if (form.kind == PrefillForm::StridedRows) {
    // Rows [0, nS): query rows 0, s, 2s, ...; rows [nS, nS + tail): the last
    // `tail` query rows; the rest of the T-row section is unused (zero).
    const int s = int(form.stride);
    DeltaRows rows(nq, s, P.promptRowsAfter);
    Expr nStrided = rows.strided, tail = rows.tail;
    queryRow = [=](Expr r) {
      return Halide::select(r < nStrided, r * s,
                            Halide::clamp(nq - tail + (r - nStrided), 0, nq - 1));
    };
    rowUsed = i < nStrided + tail;
  }
  Expr row = qt * Tq + qi;
  Expr qrow = Halide::clamp(queryRow(row), 0, nq - 1);
  P.qT(qi, d, g, qt, hk, b) = P.q(d, qrow, hk * G + g, b) * float(spec.scale);

  // Key of slot `slot` for query tile qt. Dense: the slot is the key.
  // Sparse: sinks, then the chunk's selected indices, then the local window
  // [s0 - window, s0 + span); invalid slots get key -1. With a selection,
  // s0 is the chunk's first position and span the chunk (TokenSelect's
  // chunked prefill). Without one (window + sinks) the window slides per
  // query, `p - j <= window` as FlashAttention's window_size=(window, 0):
  // s0 is the tile's first position, span the tile, and a mask trims each
  // row's keys.
  Expr slot = kb * Bk + jj;
  Expr key = slot, keyValid = Halide::cast<bool>(true);
  int64_t nSlots = 0;
  const bool sliding = form.kind == PrefillForm::Sparse && form.sparse.slots == 0;
  if (form.kind == PrefillForm::Sparse) {
    const SparseSpec &sp = form.sparse;
    const int chunk = int(sp.chunk);
    nSlots = geometry::patternKeys(sp) + (sliding ? Tq : sp.chunk);
    Expr c = (qt * Tq) / chunk; // with a selection, Tq divides chunk
    Expr s0 = P.queryPosition(spec, sliding ? qt * Tq : c * chunk);
    P.kidx(jj, kb, qt, hk, b) =
        sparseSlotKey(sp, P.indices, slot, s0, c, hk, b, int(nSlots));
    key = P.kidx(jj, kb, qt, hk, b);
    keyValid = key >= 0;
  }
  Expr keyAt = Halide::clamp(key, 0, nk - 1);

  // Scores of one key block, plus the mask bias.
  P.rd = Halide::RDom(0, int(spec.d), "rd");
  P.sdot(qi, g, jj, kb, qt, hk, b) = 0.0f;
  // The keys of one block (a schedule may stage them in fast memory).
  P.kt(d, jj, kb, qt, hk, b) = widenToF32(P.k(d, keyAt, hk, b), tiles.bitWidenF16);
  P.sdot(qi, g, jj, kb, qt, hk, b) +=
      P.qT(qi, P.rd, g, qt, hk, b) * P.kt(P.rd, jj, kb, qt, hk, b);
  Expr visible = P.keyVisible(spec, key, qrow);
  if (form.kind == PrefillForm::Sparse) {
    visible = visible && keyValid;
    if (sliding)
      visible = visible && (key < int(form.sparse.sinks) ||
                            P.queryPosition(spec, qrow) - key <=
                                int(form.sparse.window));
  }
  P.s(qi, g, jj, kb, qt, hk, b) =
      maskedScore(P.sdot(qi, g, jj, kb, qt, hk, b), visible);

  // Block-local softmax statistics and P.V.
  P.rj = Halide::RDom(0, Bk, "rj");
  P.bmax(qi, g, kb, qt, hk, b) = kMasked;
  P.bmax(qi, g, kb, qt, hk, b) =
      Halide::max(P.bmax(qi, g, kb, qt, hk, b), P.s(qi, g, P.rj, kb, qt, hk, b));
  P.p(qi, g, jj, kb, qt, hk, b) =
      keyWeight(P.s(qi, g, jj, kb, qt, hk, b), P.bmax(qi, g, kb, qt, hk, b));
  P.bsum(qi, g, kb, qt, hk, b) = 0.0f;
  P.bsum(qi, g, kb, qt, hk, b) += P.p(qi, g, P.rj, kb, qt, hk, b);
  auto vAt = [&](Expr ee, Expr j) {
    Expr vKey = form.kind == PrefillForm::Sparse
                    ? Halide::clamp(P.kidx(j, kb, qt, hk, b), 0, nk - 1)
                    : Halide::min(kb * Bk + j, nk - 1);
    return widenToF32(P.v(ee, vKey, hk, b), tiles.bitWidenF16);
  };
  // P.V. A key's weight is 0 in rows that do not see it, and 0 * inf is
  // NaN, so a non-finite V needs weighedValue's select; blocks whose V is
  // all finite (almost all) skip it when the schedule splits them.
  P.bpv(e, qi, g, kb, qt, hk, b) = 0.0f;
  P.rjNonFinite = Halide::RDom(0, Bk, "rjv");
  if (tiles.splitNonFiniteV) {
    P.vexp(e, kb, qt, hk, b) = u32(0);
    P.vexp(e, kb, qt, hk, b) = Halide::max(P.vexp(e, kb, qt, hk, b),
                                           floatBits(vAt(e, P.rj)) & u32(0x7f800000));
    Halide::RDom re(0, int(spec.dv), "re");
    P.vbad(kb, qt, hk, b) =
        Halide::maximum(P.vexp(re, kb, qt, hk, b)) == u32(0x7f800000);
    P.rjFinite = Halide::RDom(0, Bk, "rjf");
    P.rjFinite.where(!P.vbad(kb, qt, hk, b));
    P.bpv(e, qi, g, kb, qt, hk, b) +=
        P.p(qi, g, P.rjFinite, kb, qt, hk, b) * vAt(e, P.rjFinite);
    P.rjNonFinite.where(P.vbad(kb, qt, hk, b));
  }
  P.bpv(e, qi, g, kb, qt, hk, b) +=
      weighedValue(P.p(qi, g, P.rjNonFinite, kb, qt, hk, b), vAt(e, P.rjNonFinite));

  // Online merge of key blocks: state = {acc, running max, running sum}.
  Expr nblocks = form.kind == PrefillForm::Sparse
                     ? Expr(int((nSlots + Bk - 1) / Bk))
                     : (nk + Bk - 1) / Bk;
  P.rb = Halide::RDom(0, nblocks, "rb");
  if (form.kind == PrefillForm::Sparse) {
    // Slots past the tile's last row in the local part are all masked.
    const SparseSpec &sp = form.sparse;
    const int chunk = int(sp.chunk);
    Expr lastInChunk = sliding ? Expr(Tq - 1) : (qt * Tq + (Tq - 1)) % chunk;
    Expr lastSlot = int(geometry::patternKeys(sp)) + lastInChunk;
    Expr live = P.rb * Bk <= lastSlot;
    if (sp.slots > 0) {
      // Selections are compacted (indices first, then -1): a block whose
      // first slot is an unused selection slot, and which reaches no local
      // slot, holds only unused slots and is skipped.
      Expr c = Halide::min((qt * Tq) / chunk, P.indices.dim(1).extent() - 1);
      Expr hs = sp.selHeads == 1 ? Expr(0) : Expr(hk);
      Expr first = P.rb * Bk - int(sp.sinks);
      Expr firstUnused =
          first >= 0 && first < int(sp.slots) &&
          P.indices(Halide::clamp(first, 0, int(sp.slots) - 1), c, hs, b) < 0;
      live = live && !(firstUnused && (P.rb + 1) * Bk <= int(sp.sinks + sp.slots));
    }
    P.rb.where(live);
  } else if (spec.causal) {
    // The tile's last row has the largest position; with strided rows the
    // last strided row of the tile may lie beyond the tail's first rows.
    Expr last = qt * Tq + (Tq - 1);
    Expr lastPos = P.queryPosition(spec, Halide::clamp(queryRow(last), 0, nq - 1));
    if (form.kind == PrefillForm::StridedRows) {
      const int s = int(form.stride);
      DeltaRows rows(nq, s, P.promptRowsAfter);
      Expr lastStrided = Halide::min(last, rows.strided - 1);
      lastPos = Halide::max(
          lastPos, P.queryPosition(spec, Halide::clamp(lastStrided * s, 0, nq - 1)));
      // Tiles wholly in the unused part of the tail section do no work.
      // (Schedules may turn this off: on Halide 14's GPU backends the
      // extra condition in the predicate miscompiles, found by the
      // OpenCL/pocl test.)
      if (tiles.skipUnusedRowTiles) {
        Expr tileUsed = qt * Tq < rows.strided + rows.tail;
        lastPos = Halide::select(tileUsed, lastPos, -1);
      }
    }
    P.rb.where(P.rb * Bk <= lastPos);
  }
  P.state(e, qi, g, qt, hk, b) = Tuple(0.0f, kMasked, 0.0f);
  Expr acc = P.state(e, qi, g, qt, hk, b)[0];
  Expr mOld = P.state(e, qi, g, qt, hk, b)[1];
  Expr lOld = P.state(e, qi, g, qt, hk, b)[2];
  Expr mBlk = P.bmax(qi, g, P.rb, qt, hk, b);
  Expr mNew = Halide::max(mOld, mBlk);
  Expr alpha = expExact(mOld - mNew), beta = expExact(mBlk - mNew);
  P.state(e, qi, g, qt, hk, b) =
      Tuple(acc * alpha + P.bpv(e, qi, g, P.rb, qt, hk, b) * beta, mNew,
            lOld * alpha + P.bsum(qi, g, P.rb, qt, hk, b) * beta);

  auto at = [&](Expr ee, int field) {
    return P.state(ee, i % Tq, h % G, i / Tq, h / G, b)[field];
  };
  P.out(e, i, h, b) = Halide::select(
      rowUsed, poisonRow(at(e, 0) / at(e, 2), at(e, 1)), 0.0f);
  if (spec.withLse)
    P.lse(i, h, b) = rowLse(at(0, 1) + Halide::log(at(0, 2)), at(0, 1));
  return P;
}

DeltaPipeline buildDeltaCorrect(int64_t strideIn) {
  DeltaPipeline P;
  using Halide::Expr;
  const int s = int(strideIn);
  Expr nq = P.sparse.dim(1).extent();
  DeltaRows rows(nq, s, P.promptRowsAfter);
  Expr nStrided = rows.strided, tail = rows.tail;
  Halide::Var &e = P.e, &i = P.i, &h = P.h, &b = P.b;
  Expr m = i / s;
  Expr tailRow = Halide::clamp(nStrided + i - (nq - tail), 0,
                               P.rows.dim(1).extent() - 1);
  Expr corrected = P.sparse(e, i, h, b) + P.rows(e, m, h, b) -
                   P.sparse(e, m * s, h, b);
  P.out(e, i, h, b) =
      Halide::select(i >= nq - tail, P.rows(e, tailRow, h, b), corrected);
  return P;
}

std::vector<Halide::Argument> DecodePipeline::arguments() const {
  std::vector<Halide::Argument> args = AttentionIO::arguments();
  if (sparse && sparse->slots > 0)
    args.push_back(indices);
  return args;
}

DecodePipeline buildDecodeAttention(const AttentionSpec &spec,
                                    const DecodeTiles &tiles,
                                    const SparseSpec *sparse) {
  using Halide::Expr;
  using Halide::Tuple;
  DecodePipeline P;
  setKvTypes(P, spec);
  P.tiles = tiles;
  if (sparse)
    P.sparse = *sparse;
  Halide::Var &d = P.d, &e = P.e, &g = P.g, &i = P.i, &c = P.c, &hk = P.hk,
              &b = P.b, &jj = P.jj, &h = P.h;
  const int G = int(spec.hq / spec.hkv);
  const int C = tiles.keyChunk;
  Expr nk = P.k.dim(1).extent();

  P.qd(d, g, i, hk, b) = P.q(d, i, hk * G + g, b) * float(spec.scale);

  // Dense: slot = key. Sparse (one query row at position p, which starts
  // its chunk): sinks, then the selection, then the window [p - window, p];
  // invalid slots get key -1 and are masked.
  Expr slot = c * C + jj;
  Expr key = slot, keyValid = Halide::cast<bool>(true), nSlots = nk;
  if (sparse) {
    nSlots = Expr(int(geometry::decodeSlots(*sparse)));
    P.kidx(jj, i, c, hk, b) =
        sparseSlotKey(*sparse, P.indices, slot, P.queryPosition(spec, i),
                      i / int(sparse->chunk), hk, b, nSlots);
    key = P.kidx(jj, i, c, hk, b);
    keyValid = key >= 0;
  }
  Expr keyAt = Halide::clamp(key, 0, nk - 1);

  P.rd = Halide::RDom(0, int(spec.d), "rd");
  P.sdot(jj, g, i, c, hk, b) = 0.0f;
  P.sdot(jj, g, i, c, hk, b) +=
      P.qd(P.rd, g, i, hk, b) *
      widenToF32(P.k(P.rd, keyAt, hk, b), tiles.bitWidenF16);
  P.s(jj, g, i, c, hk, b) = maskedScore(
      P.sdot(jj, g, i, c, hk, b), P.keyVisible(spec, key, i) && keyValid);

  P.rj = Halide::RDom(0, C, "rj");
  P.cmax(g, i, c, hk, b) = kMasked;
  P.cmax(g, i, c, hk, b) =
      Halide::max(P.cmax(g, i, c, hk, b), P.s(P.rj, g, i, c, hk, b));
  P.p(jj, g, i, c, hk, b) =
      keyWeight(P.s(jj, g, i, c, hk, b), P.cmax(g, i, c, hk, b));
  P.csum(g, i, c, hk, b) = 0.0f;
  P.csum(g, i, c, hk, b) += P.p(P.rj, g, i, c, hk, b);
  P.cpv(e, g, i, c, hk, b) = 0.0f;
  Expr vKey = sparse ? Halide::clamp(P.kidx(P.rj, i, c, hk, b), 0, nk - 1)
                     : Halide::min(c * C + P.rj, nk - 1);
  P.cpv(e, g, i, c, hk, b) +=
      weighedValue(P.p(P.rj, g, i, c, hk, b),
                   widenToF32(P.v(e, vKey, hk, b), tiles.bitWidenF16));
  // One Func per chunk task carries all three partials to the merge.
  P.part(e, g, i, c, hk, b) =
      Tuple(P.cpv(e, g, i, c, hk, b), P.cmax(g, i, c, hk, b),
            P.csum(g, i, c, hk, b));

  Expr nchunks = (nSlots + C - 1) / C;
  P.rc = Halide::RDom(0, nchunks, "rc");
  P.gmax(g, i, hk, b) = kMasked;
  P.gmax(g, i, hk, b) =
      Halide::max(P.gmax(g, i, hk, b), P.part(0, g, i, P.rc, hk, b)[1]);
  Expr w = expExact(P.part(e, g, i, P.rc, hk, b)[1] - P.gmax(g, i, hk, b));
  P.merged(e, g, i, hk, b) = Tuple(0.0f, 0.0f);
  P.merged(e, g, i, hk, b) =
      Tuple(P.merged(e, g, i, hk, b)[0] + P.part(e, g, i, P.rc, hk, b)[0] * w,
            P.merged(e, g, i, hk, b)[1] + P.part(e, g, i, P.rc, hk, b)[2] * w);

  // Per (head in group, KV head), then laid out as [.., Hq, ..].
  P.outG(e, g, i, hk, b) = poisonRow(
      P.merged(e, g, i, hk, b)[0] / P.merged(e, g, i, hk, b)[1], P.gmax(g, i, hk, b));
  P.out(e, i, h, b) = P.outG(e, h % G, i, h / G, b);
  if (spec.withLse) {
    P.lseG(g, i, hk, b) = rowLse(
        P.gmax(g, i, hk, b) + Halide::log(P.merged(0, g, i, hk, b)[1]),
        P.gmax(g, i, hk, b));
    P.lse(i, h, b) = P.lseG(h % G, i, h / G, b);
  }
  return P;
}

} // namespace deltaflow::compiler
