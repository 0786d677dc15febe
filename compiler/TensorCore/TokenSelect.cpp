//===- TokenSelect.cpp - TokenSelect's selection on the GPU, built in MLIR ---===//
//
// attn.select under #attn.token_select (TokenSelect, Wu et al. 2024; the
// semantics of passes/lib/Policies/TokenSelect.cpp and the Halide kernel of
// compiler/Halide/Selection) for bf16/f16 Q and K, as seven SIMT kernels
// launched in order on one stream; nothing but the indices is produced, and
// nothing goes back to the host. Per (batch, chunk c), s0 the chunk's first
// position and the candidates j in [sinks, min(s0 - window, Nk)):
//   qbar   q̄_h = the mean of the chunk's query rows (f32);
//   stats  x_h(j) = (q̄_h . k_{h/G}(j)) log2(e) / sqrt(D) for 256 keys per
//          CTA, one thread per key; per warp and head the max m and the sum
//          of exp2(x - m) (the softmax's partial statistics); and the
//          chunk's histogram `hist16` zeroed;
//   merge  the partials of every warp merged per head (m_h, l_h);
//          stats also keeps every x_h(j) in the scores scratch [B, C, Hq,
//          Nk] (f32; 16.8 MB at 128K and Hq 32: mostly L2-resident);
//   vote   x_h(j) read back from the scores (K is read once, not twice),
//          S(j) = sum_h exp2(x_h(j) - m_h) / l_h = sum_h softmax_j(...);
//          the top 16 bits of S's order-preserving uint32 key counted in
//          `hist16` (65536 bins in global memory, and its top 8 bits in 256
//          more; warp-aggregated atomics): the radix select's first 16
//          bits, done by every SM (since ABI v3);
//   topk   an exact radix select of the budget-th largest key and an
//          ordered compaction of the keys above it and the lowest-index
//          ties, ascending, then -1, in three kernels (ABI v4; before, one
//          CTA per chunk did it all, 0.11 ms at 128K): cand, thresh, write
//          (described at their code below).
// The reductions use ex2.approx, so S differs from the float32 CPU kernel in
// the last bits; near-ties may order differently (bench/gpu/tensorcore.py
// checks the set against a float64 vote with that tolerance).
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/TensorCore.h"
#include "GpuKernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <cmath>
#include <stdexcept>

using namespace mlir;
namespace manifest = deltaflow::manifest;

namespace deltaflow::compiler {

namespace {

constexpr int64_t kKeysPerCta = 256; // stats / vote: one thread per key
int64_t ceilDivConst(int64_t x, int64_t y) { return (x + y - 1) / y; }
constexpr int64_t kWarpsPerCta = kKeysPerCta / 32;
constexpr int64_t kTopKThreads = 1024, kTopKWarps = kTopKThreads / 32;
constexpr int64_t kCtrlHead = 4; // control words before gtTop (see the top-k kernels)
/// In each chunk's `hist16` words: 65536 fine bins, 256 coarse bins, then
/// the list's count.
constexpr int64_t kSelectListCount = kSelectHistBins + 256;
static_assert(kSelectListCount < kSelectHistWords, "hist16 words");

class TokenSelectBuilder : GpuKernelBuilder {
public:
  TokenSelectBuilder(ImplicitLocOpBuilder &b, const DeviceSelectSpec &spec)
      : GpuKernelBuilder(b), spec(spec), G(spec.hq / spec.hkv) {
    elem = spec.dtype == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                   : Type(b.getF16Type());
  }

  void buildQbar(gpu::GPUFuncOp fn);
  void buildStats(gpu::GPUFuncOp fn, bool vote);
  void buildMerge(gpu::GPUFuncOp fn);
  void buildTopKCand(gpu::GPUFuncOp fn);
  void buildTopKThresh(gpu::GPUFuncOp fn);
  void buildTopKWrite(gpu::GPUFuncOp fn);

  Type elem;

private:
  const DeviceSelectSpec &spec;
  const int64_t G;
  // Parameters, in ABI order.
  Value q, k, qbar, stats, hstats, vote, scores, hist16, indices, nq, nk;
  Value tid, lane, warp;

  /// What the three top-k kernels share: the chunk, its candidates, its
  /// control words and list, and the shared memory (hist 256, vars 2,
  /// totals 32, per-warp histograms 32 x 256 words: kSelectTopKSharedBytes).
  struct TopK {
    Value bc, n, want, voteBase, ctrl, slices, list, histBase;
    Value hist, vars, totals, warpHist;
  };
  TopK topkBegin(gpu::GPUFuncOp fn, Value c, Value bb);
  Value topkKey(const TopK &t, Value i);
  Value ldCtrl(const TopK &t, Value word);
  void stCtrl(const TopK &t, Value v, Value word);
  /// above < want <= after (i32).
  Value crosses(Value above, Value after, Value want);
  Value isEq(Value x, Value y) {
    return b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, x, y);
  }
  Value ugt(Value x, Value y) {
    return b.create<arith::CmpIOp>(arith::CmpIPredicate::ugt, x, y);
  }
  Value popc(Value x) { return b.create<LLVM::CtPopOp>(i32, x).getResult(); }
  /// The mask of the lanes below this one.
  Value lanesBelow() {
    return b.create<arith::SubIOp>(b.create<arith::ShLIOp>(c32(1), i32of(lane)), c32(1));
  }
  /// Warp-aggregated atomics: the lanes of the (converged) warp whose
  /// `pred` holds and that share `key` (an i32, not -1) add their count to
  /// mem[at()] once, from the lowest of them (match.any). The other lanes
  /// share the key -1, which nobody adds.
  template <typename At> void aggregatedAdd(Value pred, Value key, Value mem, At at) {
    Value peers = matchAny(select(pred, key, c32(-1)));
    ifThen(land(pred, isEq(b.create<arith::AndIOp>(peers, lanesBelow()), c32(0))), [&] {
      b.create<memref::AtomicRMWOp>(arith::AtomicRMWKind::addi, popc(peers), mem,
                                    ValueRange{at()});
    });
  }

  void bind(gpu::GPUFuncOp fn) {
    Block &e = fn.getBody().front();
    unsigned a = 0;
    for (Value *v :
         {&q, &k, &qbar, &stats, &hstats, &vote, &scores, &hist16, &indices, &nq, &nk})
      *v = e.getArgument(a++);
    tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
    lane = rem(tid, 32);
    warp = div(tid, 32);
  }
  Value chunks() { return ceilDiv(nq, spec.chunk); }
  Value offset() { return spec.offset ? idx(*spec.offset) : sub(nk, nq); }
  /// End of chunk c's candidates: min(s0 - window, Nk), >= sinks (signed).
  Value candEnd(Value c) {
    Value s0 = add(offset(), mul(c, spec.chunk));
    return maxs(mins(sub(s0, idx(spec.window)), nk), idx(spec.sinks));
  }
  Value warpReduceMax(Value v) {
    for (int o = 16; o >= 1; o /= 2)
      v = fmax(v, shuffleXor(v, o));
    return v;
  }
  Value warpReduceSum(Value v) {
    for (int o = 16; o >= 1; o /= 2)
      v = fadd(v, shuffleXor(v, o));
    return v;
  }
  /// The lanes of the (full) warp whose `v` equals this lane's, as a mask:
  /// PTX match.any.sync (sm_70+), as inline PTX (MLIR 19's NVVM dialect
  /// has no op for it).
  Value matchAny(Value v) {
    return b.create<LLVM::InlineAsmOp>(
                i32, ValueRange{v}, "match.any.sync.b32 $0, $1, 0xffffffff;", "=r,r",
                /*has_side_effects=*/true, /*is_align_stack=*/false,
                LLVM::AsmDialectAttr{}, ArrayAttr{})
        .getResult(0);
  }
  /// The lanes of the (full) warp whose `pred` holds, as a mask.
  Value ballot(Value pred) {
    return b.create<NVVM::VoteBallotOp>(i32, c32(-1), pred).getResult();
  }
  /// Inclusive prefix sum of an i32 across the warp (shuffle up).
  Value warpInclusiveScan(Value v) {
    for (int o = 1; o < 32; o *= 2) {
      auto sh = b.create<gpu::ShuffleOp>(v, o, 32, gpu::ShuffleMode::UP);
      v = select(sh.getValid(), b.create<arith::AddIOp>(v, sh.getShuffleResult()), v);
    }
    return v;
  }
  /// Exclusive prefix sum of an i32 over the block's threads (in thread
  /// order), using `totals` (32 x i32 of shared memory).
  Value blockExclusiveScan(Value v, Value totals, int64_t threads) {
    b.create<gpu::BarrierOp>(); // earlier readers of `totals` are done
    Value inc = warpInclusiveScan(v);
    ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, lane, idx(31)),
           [&] { sts(inc, totals, warp); });
    b.create<gpu::BarrierOp>();
    ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, warp, idx(0)), [&] {
      Value t = select(ult(lane, idx(threads / 32)), lds(totals, lane), c32(0));
      Value s = warpInclusiveScan(t);
      sts(b.create<arith::SubIOp>(s, t), totals, lane); // exclusive
    });
    b.create<gpu::BarrierOp>();
    Value warpBase = lds(totals, warp);
    return b.create<arith::AddIOp>(warpBase, b.create<arith::SubIOp>(inc, v));
  }
  /// `words` (a multiple of `threads`) i32 of shared memory `mem` set to
  /// 0, then a barrier.
  void zeroShared(Value mem, int64_t words, int64_t threads) {
    for (int64_t z = 0; z < words / threads; ++z)
      sts(c32(0), mem, add(tid, z * threads));
    b.create<gpu::BarrierOp>();
  }
  /// The sum of the warp-uniform `v` over the warps before this one.
  Value sumOverEarlierWarps(Value v, Value totals, int64_t threads) {
    Value ex = blockExclusiveScan(select(isEq(lane, idx(0)), v, c32(0)), totals, threads);
    return b.create<gpu::ShuffleOp>(ex, 0, 32, gpu::ShuffleMode::IDX).getShuffleResult();
  }
  /// Order-preserving uint32 key of a float (as i32 bits): larger floats
  /// get larger unsigned keys; NaN (positive) above +inf.
  Value orderedKey(Value f) {
    Value u = b.create<arith::BitcastOp>(i32, f);
    Value nonNeg = b.create<arith::CmpIOp>(arith::CmpIPredicate::sge, u, c32(0));
    Value sign = c32(int64_t(int32_t(0x80000000u)));
    return select(nonNeg, b.create<arith::OrIOp>(u, sign),
                  b.create<arith::XOrIOp>(u, c32(-1)));
  }
  /// Words [first, first + count) of key row `key` of KV head `g` of K
  /// (16 bytes each; all loads issued together, through the read-only path
  /// so that LLVM keeps a prefetched copy apart).
  SmallVector<Value> loadKeyWords(Value bb, Value g, Value key, int64_t first,
                                  int64_t count) {
    Value kBase = mul(add(mul(add(mul(bb, spec.hkv), g), nk), key), spec.d);
    SmallVector<Value> raw;
    for (int64_t dd = first; dd < first + count; ++dd)
      raw.push_back(loadReadOnly16(k, add(kBase, dd * 8)));
    return raw;
  }
  /// acc[h] += q̄_h[8 dd .. 8 dd + 7] * k[...] for the words `raw` of a key
  /// row of KV head `g`, starting at word `first`; q̄ of the CTA's chunk is
  /// in `qsm` (f32).
  void accumulateScores(std::vector<Value> &acc, Value qsm, Value g, ValueRange raw,
                        int64_t first) {
    auto vecF = VectorType::get({8}, f32);
    for (int64_t i = 0; i < int64_t(raw.size()); ++i) {
      Value kv = widen16Vec(raw[size_t(i)], elem);
      for (int64_t h = 0; h < G; ++h) {
        Value at = add(mul(add(mul(g, G), h), spec.d), (first + i) * 8);
        Value qv = b.create<vector::LoadOp>(vecF, qsm, ValueRange{at}).getResult();
        acc[size_t(h)] = b.create<vector::FMAOp>(qv, kv, acc[size_t(h)]);
      }
    }
  }
  /// The G scores x_h(j) (log2 domain) from the accumulators of a whole row.
  std::vector<Value> finishScores(const std::vector<Value> &acc) {
    const double scaleLog2 = M_LOG2E / std::sqrt(double(spec.d));
    std::vector<Value> x;
    for (Value a : acc)
      x.push_back(fmul(b.create<vector::ReductionOp>(vector::CombiningKind::ADD, a),
                       f32c(scaleLog2)));
    return x;
  }
  Value zeroVec8() {
    return b.create<arith::ConstantOp>(
        DenseElementsAttr::get(VectorType::get({8}, f32), 0.0f));
  }
};

void TokenSelectBuilder::buildQbar(gpu::GPUFuncOp fn) {
  // grid (C, Hq, B), 1024 threads: phase p = tid / D sums rows p, p + P, ...
  // of the chunk for dimension tid mod D; the phases are summed in shared
  // memory.
  bind(fn);
  const int64_t D = spec.d, P = 1024 / D;
  Value c = bid(gpu::Dimension::x), h = bid(gpu::Dimension::y),
        bb = bid(gpu::Dimension::z);
  Value d = rem(tid, D), phase = div(tid, D);
  Value first = mul(c, spec.chunk);
  Value rows = minu(sub(nq, first), idx(spec.chunk));
  Value qBase = mul(add(mul(bb, spec.hq), h), nq);
  // Eight rows per step (independent loads in flight).
  constexpr int64_t U = 8;
  auto forOp = b.create<scf::ForOp>(phase, rows, idx(P * U), ValueRange{f32c(0)});
  {
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(forOp.getBody());
    Value sum = forOp.getRegionIterArgs()[0];
    for (int64_t u = 0; u < U; ++u) {
      Value r = add(forOp.getInductionVar(), u * P);
      Value ok = ult(r, rows);
      Value row = add(first, minu(r, sub(rows, 1)));
      Value x = b.create<arith::ExtFOp>(f32, lds(q, add(mul(add(qBase, row), D), d)));
      sum = fadd(sum, select(ok, x, f32c(0)));
    }
    b.create<scf::YieldOp>(ValueRange{sum});
  }
  Value sm = workgroup(dynamicShared(), f32, 1024, 0);
  sts(forOp.getResult(0), sm, tid);
  b.create<gpu::BarrierOp>();
  ifThen(ult(tid, idx(D)), [&] {
    Value sum = f32c(0);
    for (int64_t p = 0; p < P; ++p)
      sum = fadd(sum, lds(sm, add(d, p * D)));
    Value n = b.create<arith::UIToFPOp>(f32, i32of(rows));
    sts(b.create<arith::DivFOp>(sum, n), qbar,
        add(mul(add(mul(add(mul(bb, chunks()), c), spec.hq), h), D), d));
  });
  b.create<gpu::ReturnOp>();
}

void TokenSelectBuilder::buildStats(gpu::GPUFuncOp fn, bool withVote) {
  // grid (ceil(Nk / 256), C, B), 256 threads, one key each.
  bind(fn);
  const int64_t D = spec.d, Hq = spec.hq;
  Value blk = bid(gpu::Dimension::x), c = bid(gpu::Dimension::y),
        bb = bid(gpu::Dimension::z);
  Value dyn = dynamicShared();
  Value qsm = workgroup(dyn, f32, Hq * D, 0);
  Value bc = add(mul(bb, chunks()), c);
  if (!withVote) {
    // The chunk's histogram zeroed for vote (nothing reads it before);
    // the CTAs of (c, b) write it together, coalesced.
    Value step = mul(ceilDiv(nk, kKeysPerCta), kKeysPerCta);
    auto zero = b.create<scf::ForOp>(add(mul(blk, kKeysPerCta), tid),
                                     idx(kSelectHistWords), step);
    OpBuilder::InsertionGuard gz(b);
    b.setInsertionPointToStart(zero.getBody());
    sts(c32(0), hist16, add(mul(bc, kSelectHistWords), zero.getInductionVar()));
    b.setInsertionPointAfter(zero);
    // q̄ of the chunk into shared memory (stats only: vote reads the scores).
    for (int64_t i = 0; i < ceilDivConst(Hq * D, kKeysPerCta); ++i) {
      Value at = add(tid, i * kKeysPerCta);
      ifThen(ult(at, idx(Hq * D)),
             [&] { sts(lds(qbar, add(mul(bc, Hq * D), at)), qsm, at); });
    }
  }
  Value hsm;
  if (withVote) {
    // m_h and 1 / l_h of every head.
    hsm = workgroup(dyn, f32, 2 * Hq, Hq * D * 4);
    ifThen(ult(tid, idx(Hq)), [&] {
      Value base = mul(add(mul(bc, Hq), tid), 2);
      sts(lds(hstats, base), hsm, mul(tid, 2));
      sts(b.create<arith::DivFOp>(f32c(1), lds(hstats, add(base, 1))), hsm,
          add(mul(tid, 2), 1));
    });
  }
  b.create<gpu::BarrierOp>();
  Value key = add(mul(blk, kKeysPerCta), tid);
  Value isCand = land(ule(idx(spec.sinks), key), slt(key, candEnd(c)));
  Value safeKey = minu(key, sub(nk, 1));
  Value partBase; // stats of (bc, this warp): [NP, Hq, 2], NP = 8 per CTA
  Value np = mul(ceilDiv(nk, kKeysPerCta), kWarpsPerCta);
  partBase = mul(add(mul(bc, np), add(mul(blk, kWarpsPerCta), warp)), Hq * 2);
  // The scores x_h(j) of a key: [B, C, Hq, Nk].
  auto scoreAt = [&](Value h) { return add(mul(add(mul(bc, Hq), h), nk), safeKey); };
  if (!withVote) {
    // stats, unrolled over the KV heads' key rows in chunks of up to 8
    // words (64 dims): each chunk's loads are issued before the previous
    // chunk's FMAs (register double buffering at 2 x 32 registers, which
    // keeps two CTAs per SM without spills).
    const int64_t rowWords = D / 8, CH = std::min<int64_t>(8, rowWords),
                  perRow = rowWords / CH, total = spec.hkv * perRow;
    auto load = [&](int64_t t) {
      return loadKeyWords(bb, idx(t / perRow), safeKey, (t % perRow) * CH, CH);
    };
    SmallVector<Value> cur = load(0);
    std::vector<Value> acc(size_t(G), zeroVec8());
    for (int64_t t = 0; t < total; ++t) {
      SmallVector<Value> next;
      if (t + 1 < total)
        next = load(t + 1);
      Value g = idx(t / perRow);
      accumulateScores(acc, qsm, g, cur, (t % perRow) * CH);
      cur = next;
      if (t % perRow != perRow - 1)
        continue;
      std::vector<Value> x = finishScores(acc);
      acc.assign(size_t(G), zeroVec8());
      for (int64_t hh = 0; hh < G; ++hh) {
        Value h = add(mul(g, G), hh);
        Value xv = select(isCand, x[size_t(hh)], negInf());
        ifThen(ult(key, nk), [&] { sts(xv, scores, scoreAt(h)); });
        Value m = warpReduceMax(xv);
        Value ref = softmaxRef(m);
        Value l = warpReduceSum(exp2(fsub(xv, ref)));
        ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, lane, idx(0)), [&] {
          sts(m, stats, add(partBase, mul(h, 2)));
          sts(l, stats, add(add(partBase, mul(h, 2)), 1));
        });
      }
    }
    b.create<gpu::ReturnOp>();
    return;
  }
  // vote: the scores the stats kernel kept.
  auto loop = b.create<scf::ForOp>(idx(0), idx(spec.hkv), idx(1), ValueRange{f32c(0)});
  {
    OpBuilder::InsertionGuard gd(b);
    b.setInsertionPointToStart(loop.getBody());
    Value g = loop.getInductionVar();
    Value voteSum = loop.getRegionIterArgs()[0];
    for (int64_t hh = 0; hh < G; ++hh) {
      Value h = add(mul(g, G), hh);
      Value xv = select(isCand, lds(scores, scoreAt(h)), negInf());
      Value m = lds(hsm, mul(h, 2)), invL = lds(hsm, add(mul(h, 2), 1));
      Value ref = softmaxRef(m);
      voteSum = fadd(voteSum, fmul(exp2(fsub(xv, ref)), invL));
    }
    b.create<scf::YieldOp>(ValueRange{voteSum});
  }
  Value voteSum = loop.getResult(0);
  ifThen(isCand, [&] { sts(voteSum, vote, add(mul(bc, nk), key)); });
  // The top 16 bits of the vote's key into the chunk's fine bins, the top
  // 8 into its coarse bins after them (votes crowd into few bins: the
  // lanes that share one add once).
  Value bin = b.create<arith::ShRUIOp>(orderedKey(voteSum), c32(16));
  aggregatedAdd(isCand, bin, hist16,
                [&] { return add(mul(bc, kSelectHistWords), indexOf(bin)); });
  Value bin8 = b.create<arith::ShRUIOp>(bin, c32(8));
  aggregatedAdd(isCand, bin8, hist16, [&] {
    return add(mul(bc, kSelectHistWords), add(idx(kSelectHistBins), indexOf(bin8)));
  });
  b.create<gpu::ReturnOp>();
}

void TokenSelectBuilder::buildMerge(gpu::GPUFuncOp fn) {
  // grid (Hq, C, B), 256 threads: thread t merges partials t, t + 256, ...
  // of head h; then the lanes of each warp, then the 8 warps.
  bind(fn);
  const int64_t Hq = spec.hq;
  Value h = bid(gpu::Dimension::x), c = bid(gpu::Dimension::y),
        bb = bid(gpu::Dimension::z);
  Value bc = add(mul(bb, chunks()), c);
  Value np = mul(ceilDiv(nk, kKeysPerCta), kWarpsPerCta);
  auto parts = b.create<scf::ForOp>(tid, np, idx(kKeysPerCta),
                                    ValueRange{negInf(), f32c(0)});
  {
    OpBuilder::InsertionGuard gp(b);
    b.setInsertionPointToStart(parts.getBody());
    Value at = mul(add(mul(add(mul(bc, np), parts.getInductionVar()), Hq), h), 2);
    auto [m, l] = mergeStats(parts.getRegionIterArgs()[0], parts.getRegionIterArgs()[1],
                             lds(stats, at), lds(stats, add(at, 1)));
    b.create<scf::YieldOp>(ValueRange{m, l});
  }
  Value m = parts.getResult(0), l = parts.getResult(1);
  for (int o = 16; o >= 1; o /= 2) {
    auto [m2, l2] = mergeStats(m, l, shuffleXor(m, o), shuffleXor(l, o));
    m = m2;
    l = l2;
  }
  Value sm = workgroup(dynamicShared(), f32, 2 * kWarpsPerCta, 0);
  ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, lane, idx(0)), [&] {
    sts(m, sm, mul(warp, 2));
    sts(l, sm, add(mul(warp, 2), 1));
  });
  b.create<gpu::BarrierOp>();
  ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, tid, idx(0)), [&] {
    Value mm = negInf(), ll = f32c(0);
    for (int64_t w = 0; w < kWarpsPerCta; ++w) {
      auto [m2, l2] = mergeStats(mm, ll, lds(sm, idx(2 * w)), lds(sm, idx(2 * w + 1)));
      mm = m2;
      ll = l2;
    }
    Value at = mul(add(mul(bc, Hq), h), 2);
    sts(mm, hstats, at);
    sts(ll, hstats, add(at, 1));
  });
  b.create<gpu::ReturnOp>();
}

// --- Top-k: three kernels (ABI token-select-v4) --------------------------------
//
// cand    grid (P, C, B), P = ceil(Nk / 8192): every CTA finds the top 16
//         bits of the budget-th largest key from `hist16` (the same bin in
//         every CTA), then reads its slice of 8192 candidates once: it
//         counts those above the bin (gtTop[p]) and appends the index of
//         each one in the bin to a list (in the `scores` scratch, which vote
//         has read), reserving its places by one atomic on the list's count.
// thresh  grid (C, B): the low 16 bits by two 8-bit radix passes over the
//         list (a fraction of the candidates, unless their votes tie), so
//         the budget-th largest key `thr` and the ties to take; per slice,
//         the list's keys above thr and equal to it; then per slice the keys
//         above thr and the ties before it (prefix sums over the slices).
// write   grid (P, C, B): each CTA writes its slice's kept indices in
//         ascending order from its slice's offset: per-warp segments read
//         coalesced, ranks inside a warp by ballots.
// With n <= budget, thresh writes sinks + t for t < n, then -1, and cand
// and write do nothing. Per (batch, chunk): the list's count is the i32
// word after the 65536 + 256 bins of `hist16` (zeroed with them by stats); the
// other control words are i32 bits in the `stats` scratch (dead after
// merge): [0] the 16-bit bin, [1] the count left in it, [2] thr, [3] ties,
// then gtTop, base and eqBefore, P words each.

TokenSelectBuilder::TopK TokenSelectBuilder::topkBegin(gpu::GPUFuncOp fn, Value c,
                                                       Value bb) {
  bind(fn);
  TopK t;
  t.bc = add(mul(bb, chunks()), c);
  t.n = sub(candEnd(c), idx(spec.sinks));
  t.want = minu(t.n, idx(spec.slots));
  t.voteBase = add(mul(t.bc, nk), spec.sinks);
  Value dyn = dynamicShared();
  t.hist = workgroup(dyn, i32, 256, 0);
  t.vars = workgroup(dyn, i32, 2, 256 * 4);
  t.totals = workgroup(dyn, i32, 32, 256 * 4 + 2 * 4);
  t.warpHist = workgroup(dyn, i32, kTopKWarps * 256, 256 * 4 + 2 * 4 + 32 * 4);
  Value np = mul(ceilDiv(nk, kKeysPerCta), kWarpsPerCta);
  t.ctrl = mul(t.bc, mul(np, spec.hq * 2));
  t.slices = ceilDiv(nk, kSelectTopKSlice);
  t.list = mul(t.bc, mul(nk, spec.hq));
  t.histBase = mul(t.bc, kSelectHistWords);
  return t;
}

Value TokenSelectBuilder::topkKey(const TopK &t, Value i) {
  return orderedKey(lds(vote, add(t.voteBase, i)));
}
Value TokenSelectBuilder::ldCtrl(const TopK &t, Value word) {
  return b.create<arith::BitcastOp>(i32, lds(stats, add(t.ctrl, word)));
}
void TokenSelectBuilder::stCtrl(const TopK &t, Value v, Value word) {
  sts(b.create<arith::BitcastOp>(f32, v), stats, add(t.ctrl, word));
}
Value TokenSelectBuilder::crosses(Value above, Value after, Value want) {
  return land(b.create<arith::CmpIOp>(arith::CmpIPredicate::slt, above, want),
              b.create<arith::CmpIOp>(arith::CmpIPredicate::sge, after, want));
}

void TokenSelectBuilder::buildTopKCand(gpu::GPUFuncOp fn) {
  constexpr int64_t T = kTopKThreads;
  Value p = bid(gpu::Dimension::x);
  TopK t = topkBegin(fn, bid(gpu::Dimension::y), bid(gpu::Dimension::z));
  ifThen(ult(idx(spec.slots), t.n), [&] {
    // The top 16 bits from the chunk's histograms (vote counted them): the
    // top 8 bits from the 256 coarse bins, then the next 8 from the 256
    // fine bins under that one, each by a block scan of one bin per thread
    // (thread t holds bin 255 - t: the scan runs from the top). Scanning
    // the 65536 fine bins took 33 us per CTA (uncoalesced reads).
    Value wantI = i32of(t.want);
    Value inRange = ult(tid, idx(256));
    Value fromTop = sub(idx(255), minu(tid, idx(255)));
    auto findBin = [&](Value binAt, Value aboveAll) {
      Value cnt = select(inRange, lds(hist16, binAt), c32(0));
      Value above = b.create<arith::AddIOp>(aboveAll, blockExclusiveScan(cnt, t.totals, T));
      ifThen(land(inRange, crosses(above, b.create<arith::AddIOp>(above, cnt), wantI)), [&] {
        sts(i32of(fromTop), t.vars, idx(0));
        sts(above, t.vars, idx(1));
      });
      b.create<gpu::BarrierOp>();
    };
    findBin(add(t.histBase, add(idx(kSelectHistBins), fromTop)), c32(0));
    Value bin8 = lds(t.vars, idx(0)), above8 = lds(t.vars, idx(1));
    b.create<gpu::BarrierOp>();
    findBin(add(t.histBase, add(mul(indexOf(bin8), 256), fromTop)), above8);
    ifThen(isEq(tid, idx(0)), [&] {
      Value fine = lds(t.vars, idx(0));
      sts(b.create<arith::OrIOp>(b.create<arith::ShLIOp>(bin8, c32(8)), fine), t.vars, idx(0));
      sts(b.create<arith::SubIOp>(wantI, lds(t.vars, idx(1))), t.vars, idx(1));
    });
    b.create<gpu::BarrierOp>();
    Value bin16 = lds(t.vars, idx(0));
    ifThen(land(isEq(p, idx(0)), isEq(tid, idx(0))), [&] {
      stCtrl(t, bin16, idx(0));
      stCtrl(t, lds(t.vars, idx(1)), idx(1));
    });
    // The slice: candidates p S + u T + tid (coalesced), V per thread, all
    // loads first.
    constexpr int64_t V = kSelectTopKSlice / T;
    Value first = mul(p, kSelectTopKSlice);
    Value below = lanesBelow();
    std::vector<Value> is, kks;
    for (int64_t u = 0; u < V; ++u) {
      is.push_back(add(first, add(tid, u * T)));
      kks.push_back(topkKey(t, minu(is.back(), sub(t.n, 1))));
    }
    // Above the bin: counted; in the bin: appended to the list. The CTA
    // reserves its places with one atomic on the list's count (one per
    // warp and step made the count's address the bottleneck: 4096 atomics
    // in a row at 128K), the warps take theirs in warp order, the lanes in
    // lane order.
    Value gt = c32(0), warpCnt = c32(0);
    std::vector<Value> inBins, masks;
    for (int64_t u = 0; u < V; ++u) {
      Value valid = ult(is[size_t(u)], t.n);
      Value top16 = b.create<arith::ShRUIOp>(kks[size_t(u)], c32(16));
      gt = b.create<arith::AddIOp>(
          gt, b.create<arith::ExtUIOp>(i32, land(valid, ugt(top16, bin16))));
      inBins.push_back(land(valid, isEq(top16, bin16)));
      masks.push_back(ballot(inBins.back()));
      warpCnt = b.create<arith::AddIOp>(warpCnt, popc(masks.back()));
    }
    Value warpOff = sumOverEarlierWarps(warpCnt, t.totals, T);
    ifThen(isEq(tid, idx(T - 32)), [&] { // the last warp's lane 0: the CTA's total
      Value old = b.create<memref::AtomicRMWOp>(
          arith::AtomicRMWKind::addi, b.create<arith::AddIOp>(warpOff, warpCnt), hist16,
          ValueRange{add(t.histBase, kSelectListCount)});
      sts(old, t.hist, idx(3));
    });
    b.create<gpu::BarrierOp>();
    Value slot0 = b.create<arith::AddIOp>(lds(t.hist, idx(3)), warpOff);
    for (int64_t u = 0; u < V; ++u) {
      Value slot = b.create<arith::AddIOp>(
          slot0, popc(b.create<arith::AndIOp>(masks[size_t(u)], below)));
      Value i = is[size_t(u)];
      ifThen(inBins[size_t(u)], [&] {
        sts(b.create<arith::BitcastOp>(f32, i32of(i)), scores, add(t.list, indexOf(slot)));
      });
      slot0 = b.create<arith::AddIOp>(slot0, popc(masks[size_t(u)]));
    }
    // gtTop[p]: the block's sum.
    Value warpSum = b.create<gpu::ShuffleOp>(warpInclusiveScan(gt), 31, 32,
                                             gpu::ShuffleMode::IDX)
                        .getShuffleResult();
    ifThen(isEq(tid, idx(0)), [&] { sts(c32(0), t.hist, idx(2)); });
    b.create<gpu::BarrierOp>();
    ifThen(isEq(lane, idx(0)), [&] {
      b.create<memref::AtomicRMWOp>(arith::AtomicRMWKind::addi, warpSum, t.hist,
                                    ValueRange{idx(2)});
    });
    b.create<gpu::BarrierOp>();
    ifThen(isEq(tid, idx(0)),
           [&] { stCtrl(t, lds(t.hist, idx(2)), add(p, kCtrlHead)); });
  });
  b.create<gpu::ReturnOp>();
}

void TokenSelectBuilder::buildTopKThresh(gpu::GPUFuncOp fn) {
  constexpr int64_t T = kTopKThreads, W = kTopKWarps;
  TopK t = topkBegin(fn, bid(gpu::Dimension::x), bid(gpu::Dimension::y));
  const int64_t budget = spec.slots, sinks = spec.sinks;
  Value outBase = mul(t.bc, budget);
  auto many = b.create<scf::IfOp>(ult(idx(budget), t.n), /*withElse=*/true);
  {
    // Every candidate fits: slots t < n hold sinks + t, the rest -1.
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(&many.getElseRegion().front());
    auto fill = b.create<scf::ForOp>(tid, idx(budget), idx(T));
    b.setInsertionPointToStart(fill.getBody());
    Value s = fill.getInductionVar();
    sts(select(ult(s, t.n), i32of(add(s, sinks)), c32(-1)), indices, add(outBase, s));
  }
  OpBuilder::InsertionGuard g(b);
  b.setInsertionPointToStart(&many.getThenRegion().front());
  Value count = indexOf(lds(hist16, add(t.histBase, kSelectListCount)));
  auto listKey = [&](Value j) {
    Value i = indexOf(b.create<arith::BitcastOp>(i32, lds(scores, add(t.list, j))));
    return std::make_pair(i, topkKey(t, i));
  };
  Value myHist = mul(warp, 256);
  // Radix select over the list: the low 16 bits, 8 at a time.
  Value prefix = b.create<arith::ShLIOp>(ldCtrl(t, idx(0)), c32(16));
  Value mask = c32(int64_t(int32_t(0xFFFF0000u)));
  Value kLeft = ldCtrl(t, idx(1));
  for (int shift = 8; shift >= 0; shift -= 8) {
    zeroShared(t.warpHist, W * 256, T);
    // Whole warps step together (for match.any): lane l takes entry w + l.
    // The lanes of a warp that share a bin add their count once, from the
    // lowest of them (votes crowd into few bins).
    constexpr int64_t U = 4;
    auto scan = b.create<scf::ForOp>(mul(sub(tid, lane), U), count, idx(T * U));
    {
      OpBuilder::InsertionGuard gs(b);
      b.setInsertionPointToStart(scan.getBody());
      std::vector<Value> js, kks;
      for (int64_t u = 0; u < U; ++u) {
        js.push_back(add(scan.getInductionVar(), add(lane, u * 32)));
        kks.push_back(listKey(minu(js.back(), subSat(count, idx(1)))).second);
      }
      for (int64_t u = 0; u < U; ++u) {
        Value kk = kks[size_t(u)];
        Value match = land(ult(js[size_t(u)], count),
                           isEq(b.create<arith::AndIOp>(kk, mask), prefix));
        Value bin = b.create<arith::AndIOp>(b.create<arith::ShRUIOp>(kk, c32(shift)),
                                            c32(255));
        ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::ne, ballot(match), c32(0)),
               [&] {
                 aggregatedAdd(match, bin, t.warpHist,
                               [&] { return add(myHist, indexOf(bin)); });
               });
      }
    }
    b.create<gpu::BarrierOp>();
    ifThen(ult(tid, idx(256)), [&] {
      Value sum = c32(0);
      for (int64_t w = 0; w < W; ++w)
        sum = b.create<arith::AddIOp>(sum, lds(t.warpHist, add(tid, w * 256)));
      sts(sum, t.hist, tid);
    });
    b.create<gpu::BarrierOp>();
    Value kNow = kLeft;
    ifThen(isEq(warp, idx(0)), [&] {
      // Bins from the top: the first whose cumulative count reaches kNow.
      // Lane l holds bins 255 - 8l down to 248 - 8l; a warp scan of the
      // lanes' sums gives each lane the count above its bins, and the one
      // lane whose bins cross kNow writes the bin and the count left.
      constexpr int64_t PerLane = 256 / 32;
      Value top = sub(idx(255), mul(lane, PerLane));
      std::vector<Value> cnt;
      Value sum = c32(0);
      for (int64_t j = 0; j < PerLane; ++j) {
        cnt.push_back(lds(t.hist, sub(top, j)));
        sum = b.create<arith::AddIOp>(sum, cnt.back());
      }
      Value above = b.create<arith::SubIOp>(warpInclusiveScan(sum), sum);
      for (int64_t j = 0; j < PerLane; ++j) {
        Value after = b.create<arith::AddIOp>(above, cnt[size_t(j)]);
        Value before = above;
        ifThen(crosses(above, after, kNow), [&] {
          sts(i32of(sub(top, j)), t.vars, idx(0));
          sts(b.create<arith::SubIOp>(kNow, before), t.vars, idx(1));
        });
        above = after;
      }
    });
    b.create<gpu::BarrierOp>();
    Value bin = lds(t.vars, idx(0));
    kLeft = lds(t.vars, idx(1));
    prefix = b.create<arith::OrIOp>(prefix, b.create<arith::ShLIOp>(bin, c32(shift)));
    mask = b.create<arith::OrIOp>(mask, c32(int64_t(int32_t(0xFFu << shift))));
    b.create<gpu::BarrierOp>();
  }
  Value thr = prefix, ties = kLeft;
  // Per slice: the list's keys above thr and equal to it, in shared memory
  // (two arrays of up to 4096 slices in the per-warp histograms' place; the
  // runtime refuses more keys), warp-aggregated by slice.
  constexpr int64_t MaxSlices = kTopKWarps * 256 / 2;
  static_assert(MaxSlices * kSelectTopKSlice == kSelectMaxKeys, "the runtime's limit");
  Value gtExtra = t.warpHist;
  zeroShared(t.warpHist, W * 256, T);
  auto perSlice = b.create<scf::ForOp>(sub(tid, lane), count, idx(T));
  {
    OpBuilder::InsertionGuard gp(b);
    b.setInsertionPointToStart(perSlice.getBody());
    Value j = add(perSlice.getInductionVar(), lane);
    Value valid = ult(j, count);
    std::pair<Value, Value> entry = listKey(minu(j, subSat(count, idx(1))));
    Value i = entry.first, kk = entry.second;
    Value slice = i32of(div(i, kSelectTopKSlice));
    for (int which = 0; which < 2; ++which) {
      Value pred = land(valid, which == 0 ? ugt(kk, thr) : isEq(kk, thr));
      ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::ne, ballot(pred), c32(0)), [&] {
        aggregatedAdd(pred, slice, gtExtra,
                      [&] { return add(indexOf(slice), which * MaxSlices); });
      });
    }
  }
  b.create<gpu::BarrierOp>();
  // base[p] = sum over q < p of gtTop[q] + gtExtra[q], eqBefore[p] = sum over
  // q < p of eq[q]: block scans over the slices, 1024 at a time.
  auto scan = b.create<scf::ForOp>(idx(0), t.slices, idx(T), ValueRange{c32(0), c32(0)});
  {
    OpBuilder::InsertionGuard gs(b);
    b.setInsertionPointToStart(scan.getBody());
    Value s = add(scan.getInductionVar(), tid);
    Value ok = ult(s, t.slices);
    Value sAt = minu(s, subSat(t.slices, idx(1)));
    Value gtS = select(ok,
                       b.create<arith::AddIOp>(ldCtrl(t, add(sAt, kCtrlHead)),
                                               lds(gtExtra, sAt)),
                       c32(0));
    Value eqS = select(ok, lds(gtExtra, add(sAt, MaxSlices)), c32(0));
    Value gtCarry = scan.getRegionIterArgs()[0], eqCarry = scan.getRegionIterArgs()[1];
    Value gtEx = blockExclusiveScan(gtS, t.totals, T);
    Value eqEx = blockExclusiveScan(eqS, t.totals, T);
    ifThen(ok, [&] {
      stCtrl(t, b.create<arith::AddIOp>(gtCarry, gtEx), add(add(t.slices, s), kCtrlHead));
      stCtrl(t, b.create<arith::AddIOp>(eqCarry, eqEx),
             add(add(mul(t.slices, 2), s), kCtrlHead));
    });
    // The carries: the last thread's inclusive sums, shared.
    ifThen(isEq(tid, idx(T - 1)), [&] {
      sts(b.create<arith::AddIOp>(gtEx, gtS), t.vars, idx(0));
      sts(b.create<arith::AddIOp>(eqEx, eqS), t.vars, idx(1));
    });
    b.create<gpu::BarrierOp>();
    Value gtNext = b.create<arith::AddIOp>(gtCarry, lds(t.vars, idx(0)));
    Value eqNext = b.create<arith::AddIOp>(eqCarry, lds(t.vars, idx(1)));
    b.create<gpu::BarrierOp>();
    b.create<scf::YieldOp>(ValueRange{gtNext, eqNext});
  }
  ifThen(isEq(tid, idx(0)), [&] {
    stCtrl(t, thr, idx(2));
    stCtrl(t, ties, idx(3));
  });
  b.setInsertionPointAfter(many);
  b.create<gpu::ReturnOp>();
}

void TokenSelectBuilder::buildTopKWrite(gpu::GPUFuncOp fn) {
  constexpr int64_t T = kTopKThreads;
  Value p = bid(gpu::Dimension::x);
  TopK t = topkBegin(fn, bid(gpu::Dimension::y), bid(gpu::Dimension::z));
  Value outBase = mul(t.bc, spec.slots);
  ifThen(ult(idx(spec.slots), t.n), [&] {
    Value thr = ldCtrl(t, idx(2)), ties = ldCtrl(t, idx(3));
    Value sliceGt = ldCtrl(t, add(add(t.slices, p), kCtrlHead));
    Value sliceEq = ldCtrl(t, add(add(mul(t.slices, 2), p), kCtrlHead));
    // Warp w's segment: elements p S + 256 w + 32 u + lane, V = 8 per lane,
    // kept in registers for both steps.
    constexpr int64_t V = kSelectTopKSlice / T;
    Value first = add(mul(p, kSelectTopKSlice), mul(warp, 32 * V));
    std::vector<Value> is, valid, kks;
    for (int64_t u = 0; u < V; ++u) {
      is.push_back(add(first, add(lane, u * 32)));
      valid.push_back(ult(is.back(), t.n));
      kks.push_back(topkKey(t, minu(is.back(), sub(t.n, 1))));
    }
    std::vector<Value> gtMask, tieMask;
    Value gtN = c32(0), eqN = c32(0);
    for (int64_t u = 0; u < V; ++u) {
      gtMask.push_back(ballot(land(valid[size_t(u)], ugt(kks[size_t(u)], thr))));
      tieMask.push_back(ballot(land(valid[size_t(u)], isEq(kks[size_t(u)], thr))));
      gtN = b.create<arith::AddIOp>(gtN, popc(gtMask.back()));
      eqN = b.create<arith::AddIOp>(eqN, popc(tieMask.back()));
    }
    // Ties before this warp, and the first place it writes.
    Value seen = b.create<arith::AddIOp>(sliceEq, sumOverEarlierWarps(eqN, t.totals, T));
    Value pos = b.create<arith::AddIOp>(
        b.create<arith::AddIOp>(sliceGt, sumOverEarlierWarps(gtN, t.totals, T)),
        b.create<arith::MinSIOp>(seen, ties));
    Value below = lanesBelow();
    for (int64_t u = 0; u < V; ++u) {
      Value tie = land(valid[size_t(u)], isEq(kks[size_t(u)], thr));
      Value tieRank = b.create<arith::AddIOp>(
          seen, popc(b.create<arith::AndIOp>(tieMask[size_t(u)], below)));
      Value take = b.create<arith::OrIOp>(
          land(valid[size_t(u)], ugt(kks[size_t(u)], thr)),
          land(tie, b.create<arith::CmpIOp>(arith::CmpIPredicate::slt, tieRank, ties)));
      Value takeMask = ballot(take);
      Value at = b.create<arith::AddIOp>(pos, popc(b.create<arith::AndIOp>(takeMask, below)));
      Value i = is[size_t(u)];
      ifThen(take, [&] {
        sts(i32of(add(i, spec.sinks)), indices, add(outBase, indexOfSigned(at)));
      });
      pos = b.create<arith::AddIOp>(pos, popc(takeMask));
      seen = b.create<arith::AddIOp>(seen, popc(tieMask[size_t(u)]));
    }
  });
  b.create<gpu::ReturnOp>();
}

} // namespace

std::string deviceSelectUnsupported(const DeviceSelectSpec &s) {
  using manifest::DType;
  if (s.policy != "token-select")
    return "selection policy '" + s.policy +
           "' (the device selection implements token-select; others take an "
           "f32 query on the Halide kernels)";
  if (s.dtype != DType::BFloat16 && s.dtype != DType::Float16)
    return std::string("query type ") + manifest::toString(s.dtype) +
           " (the device selection takes bfloat16 or float16)";
  if (s.kDtype != s.dtype)
    return std::string("key type ") + manifest::toString(s.kDtype) +
           " differs from the query's " + manifest::toString(s.dtype);
  if (s.d != 64 && s.d != 128 && s.d != 256)
    return "head dim " + std::to_string(s.d) + " (supported: 64, 128, 256)";
  if (s.hkv < 1 || s.hq % s.hkv != 0 || s.hq / s.hkv > 16)
    return std::to_string(s.hq) + " query heads over " + std::to_string(s.hkv) +
           " KV heads (up to 16 per KV head)";
  if (s.perKvHead)
    return "one selection per KV head (token-select shares one)";
  if (s.hq * s.d * 4 + 2 * s.hq * 4 > kTensorCoreMaxSharedBytes)
    return "shared memory for q-bar of " + std::to_string(s.hq) + " heads";
  if (s.slots < 1 || s.slots > (int64_t(1) << 30) || s.chunk < 1 ||
      s.sinks < 0 || s.window < 0)
    return "this selection pattern";
  return "";
}

DeviceSelectKernels buildDeviceSelect(const DeviceSelectSpec &spec,
                                      const std::string &prefix) {
  if (std::string why = deviceSelectUnsupported(spec); !why.empty())
    throw std::runtime_error("no device selection kernel for " + why);
  GpuKernelModule gm(prefix + "_module", "device selection");
  ImplicitLocOpBuilder &b = gm.builder();
  TokenSelectBuilder probe(b, spec);
  Type elem = probe.elem, f32 = b.getF32Type(), i32 = b.getI32Type();
  SmallVector<Type> args = {gm.buffer(elem), gm.buffer(elem), gm.buffer(f32),
                            gm.buffer(f32),  gm.buffer(f32),  gm.buffer(f32),
                            gm.buffer(f32),  gm.buffer(i32),  gm.buffer(i32),
                            b.getIndexType(), b.getIndexType()};
  DeviceSelectKernels k;
  k.prefix = prefix;
  TokenSelectBuilder(b, spec).buildQbar(gm.addKernel(prefix + "_qbar", args, 1024));
  TokenSelectBuilder(b, spec).buildStats(gm.addKernel(prefix + "_stats", args, 256), false);
  TokenSelectBuilder(b, spec).buildMerge(gm.addKernel(prefix + "_merge", args, 256));
  TokenSelectBuilder(b, spec).buildStats(gm.addKernel(prefix + "_vote", args, 256), true);
  TokenSelectBuilder(b, spec).buildTopKCand(gm.addKernel(prefix + "_topk_cand", args, 1024));
  TokenSelectBuilder(b, spec).buildTopKThresh(gm.addKernel(prefix + "_topk_thresh", args, 1024));
  TokenSelectBuilder(b, spec).buildTopKWrite(gm.addKernel(prefix + "_topk_write", args, 1024));
  k.ptx = gm.ptx();
  k.mlir = gm.mlirText;
  return k;
}

} // namespace deltaflow::compiler
