//===- AttentionTile.cpp - FlashAttention-2 on mma.sync, built in MLIR ----===//
//
// One CTA computes `warps * 16` query rows of one (batch, query head); each
// warp owns 16 rows and keeps, in registers:
//   - its Q tile as mma A fragments (loaded once with ldmatrix),
//   - the output accumulator O (16 x D, f32) as m16n8 C fragments,
//   - the running row max m and the per-lane partial row sum l.
// K/V tiles of `keyTile` keys stream through shared memory, double-buffered
// with cp.async (nvgpu.device_async_copy) and stored with an XOR swizzle
// (16-byte chunk c of row r lands at chunk c ^ (r mod 8)) so that every
// ldmatrix phase touches eight distinct bank groups.
// Per K/V tile: S = Q K^T (mma, B from ldmatrix on K), mask (only in the
// tiles that straddle the causal diagonal or the end of K), online softmax
// on the C fragments (row max and sums across the 4 lanes of a row by
// shuffles; exp2 with the scale folded in), P converted to bf16/f16 in
// registers and used directly as the A operand of P V (B from
// ldmatrix.trans on V): the C layout of m16n8k16 for two adjacent n-tiles
// is exactly its A layout (PTX ISA, "Matrix Fragments for mma.m16n8k16").
// Causal CTAs stop at their last diagonal tile and are scheduled longest
// first.
//
// The mma itself is the NVVM intrinsic llvm.nvvm.mma.m16n8k16.row.col.*:
// MLIR 19's nvgpu.mma.sync and nvvm.mma.sync reject bf16 operands (their
// type deduction has no bf16 m16n8k16 case), so the kernel calls the
// intrinsic through llvm.call_intrinsic. cp.async's zero-fill form is not
// used either: MLIR 19 translates nvvm.cp.async's src-size operand to the
// plain 16-byte intrinsic, dropping it; rows past the end are zeroed with
// ordinary shared stores instead.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/TensorCore.h"
#include "GpuKernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/NVGPU/IR/NVGPUDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

using namespace mlir;
namespace manifest = deltaflow::manifest;

namespace deltaflow::compiler {

namespace {

constexpr int kMmaM = 16, kMmaN = 8, kMmaK = 16;

int64_t ceilDivConst(int64_t x, int64_t y) { return (x + y - 1) / y; }

/// True for attn.sparse_attention with an index input (a selection).
bool gathers(const manifest::SparsePattern *sparse) {
  return sparse && sparse->slots > 0;
}

int64_t sharedBytesOf(const manifest::AttentionParams &spec,
                      const TensorCoreTile &tile,
                      const manifest::SparsePattern *sparse) {
  int64_t rows = int64_t(tile.warps) * kMmaM;
  // Q tile + two K tiles + two V tiles, 2-byte elements; with a selection,
  // the key of each row of both K/V stages (i32).
  return (rows + 4 * int64_t(tile.keyTile)) * spec.d * 2 +
         (gathers(sparse) ? 2 * int64_t(tile.keyTile) * 4 : 0);
}

/// The kernel body, built op by op. Values named as in FlashAttention-2:
/// S = Q K^T, P = exp(S - m), O = P V, m (row max), l (row sum).
class AttentionTileBuilder : GpuKernelBuilder {
public:
  AttentionTileBuilder(ImplicitLocOpBuilder &b,
                       const manifest::AttentionParams &spec,
                       const TensorCoreTile &tile,
                       const manifest::SparsePattern *sparse, int64_t selHeads,
                       int64_t deltaStride = 0)
      : GpuKernelBuilder(b), spec(spec), tile(tile), selHeads(selHeads),
        deltaStride(deltaStride),
        sliding(sparse && sparse->slots == 0 ? sparse : nullptr),
        gather(gathers(sparse) ? sparse : nullptr), D(spec.d), BN(tile.keyTile),
        BM(tile.warps * kMmaM), threads(tile.warps * 32) {
    elem = spec.dtype == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                   : Type(b.getF16Type());
  }

  void build(gpu::GPUFuncOp fn);

private:
  const manifest::AttentionParams &spec;
  const TensorCoreTile &tile;
  const int64_t selHeads; ///< gather: index sets, 1 (shared) or Hkv
  /// > 0: Δ's dense rows ("dense-rows-v1"): the CTA's rows are rows of
  /// attn.dense_rows (query rows 0, s, 2s, ..., then the tail), its keys
  /// one split of keysPerSplit, its result a partial (O, L) for the merge.
  const int64_t deltaStride;
  /// Window + sinks (FlashAttention's window_size=(window, 0) plus the
  /// first `sinks` keys); nullptr: dense.
  const manifest::SparsePattern *sliding;
  /// Sinks + selected indices + a local window anchored at the chunk start
  /// (TokenSelect's chunked prefill); nullptr: no index input.
  const manifest::SparsePattern *gather;
  const int64_t D, BN, BM, threads;
  Type elem;
  Value smem; // memref<(BM + 4 BN) * D x elem, workgroup>
  Value keysMem; // gather: memref<2 BN x i32, workgroup>, after smem
  Value tid, lane, warp;

  /// Element offset, in a row-major tile of D columns, of the 8-element
  /// chunk that holds (row, col): col's chunk XOR (row mod 8).
  Value swizzled(Value row, Value col) {
    Value chunk = b.create<arith::XOrIOp>(div(col, 8), rem(row, 8));
    return add(mul(row, D), mul(chunk, 8));
  }
  // --- ldmatrix addresses in 32-bit arithmetic --------------------------
  // A lane reads row rowBase + R and column colBase + C of a swizzled tile,
  // with R a multiple of 8 and C of 16 (fragment steps) and colBase 0 or 8:
  // then (row mod 8) = (rowBase mod 8) and chunk (colBase + C) / 8 =
  // colBase / 8 XOR C / 8, so the element offset is
  //   rowBase D + R D + (sw XOR C),  sw = 8 ((colBase / 8) XOR (rowBase mod 8)),
  // one xor and one add per fragment on top of a per-lane base.
  struct LaneTile {
    Value rowOffset; // rowBase * D (i32)
    Value sw;        // 8 ((colBase / 8) XOR (rowBase mod 8)) (i32)
  };
  LaneTile laneTile(Value rowBase, Value colBase) {
    Value r = i32of(rowBase), c = i32of(colBase);
    Value chunk = b.create<arith::XOrIOp>(
        b.create<arith::ShRUIOp>(c, c32(3)),
        b.create<arith::AndIOp>(r, c32(7)));
    return {b.create<arith::MulIOp>(r, c32(D)),
            b.create<arith::ShLIOp>(chunk, c32(3))};
  }
  /// Element offset (index) of (rowBase + R, colBase + C) in the tile whose
  /// first element is at `tileBase` (i32, a multiple of 8).
  Value fragmentAt(Value tileBase, const LaneTile &lt, int64_t R, int64_t C) {
    Value base = b.create<arith::AddIOp>(tileBase, lt.rowOffset);
    Value col = b.create<arith::XOrIOp>(lt.sw, c32(C));
    return indexOf(b.create<arith::AddIOp>(
        b.create<arith::AddIOp>(base, c32(R * D)), col));
  }
  int64_t qRegion() const { return 0; }
  Value kRegion(Value stage) { return add(mul(stage, BN * D), BM * D); }
  Value vRegion(Value stage) {
    return add(mul(stage, BN * D), BM * D + 2 * BN * D);
  }

  /// Copies rows [row0, row0 + rows) of a [*, D] matrix starting at element
  /// `base` of `src` into the swizzled tile at `region`; rows >= limit are
  /// zero-filled. Each thread moves 16-byte chunks. With `sourceRow`, tile
  /// row r comes from row sourceRow(row0 + r) of the matrix.
  void loadTile(Value src, Value base, Value row0, Value limit, Value region,
                int64_t rows,
                llvm::function_ref<Value(Value)> sourceRow = nullptr) {
    int64_t chunksPerRow = D / 8, total = rows * chunksPerRow;
    for (int64_t i = 0; i < total / threads; ++i) {
      Value c = add(tid, i * threads);
      Value r = div(c, chunksPerRow), ch = rem(c, chunksPerRow);
      Value dst = add(region, swizzled(r, mul(ch, 8)));
      Value grow = add(row0, r);
      auto ifOp = b.create<scf::IfOp>(ult(grow, limit), /*withElse=*/true);
      {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(&ifOp.getThenRegion().front());
        Value from = add(base, add(mul(sourceRow ? sourceRow(grow) : grow, D),
                                   mul(ch, 8)));
        cpAsync16(smem, dst, src, from);
        b.setInsertionPointToStart(&ifOp.getElseRegion().front());
        auto vecTy = VectorType::get({8}, elem);
        Value zero = b.create<arith::ConstantOp>(
            DenseElementsAttr::get(vecTy, b.getZeroAttr(elem)));
        b.create<vector::StoreOp>(zero, smem, ValueRange{dst});
      }
    }
  }

  /// ldmatrix x4 (optionally .trans) at the lane's address.
  std::array<Value, 4> ldmatrix4(Value offset, bool trans) {
    return ldmatrixX4(elem, smem, offset, trans);
  }
  /// Two f32 rounded to elem and packed (P's A fragments, the output).
  Value pack2(Value x, Value y) { return packPair(elem, x, y); }
  /// D = A B + C for one m16n8k16 tile (row-major A, column-major B).
  std::array<Value, 4> mma(const std::array<Value, 4> &a, Value b0, Value b1,
                           const std::array<Value, 4> &c) {
    return mmaM16N8K16(elem, a, b0, b1, c);
  }

  Value quadMax(Value v) {
    v = fmax(v, shuffleXor(v, 1));
    return fmax(v, shuffleXor(v, 2));
  }
  Value quadSum(Value v) {
    v = fadd(v, shuffleXor(v, 1));
    return fadd(v, shuffleXor(v, 2));
  }

  struct Context {
    Value q, k, v, out, lse, nq, nk;
    Value qBase, kvBase, q0, offset, scaleLog2;
    /// The key tiles run in a virtual order v: tiles [0, sinkTiles), then
    /// from winStart on (dense: sinkTiles = winStart = 0, tile = v).
    Value sinkTiles, winStart;
    /// Gather: the index input, the chunk's first position s0, the element
    /// offset of the chunk's selection, its valid entries (nSel), the first
    /// key of the local window, and whether the context fits the pattern
    /// (then the slots are the keys: dense attention).
    Value indices, s0, selBase, nSel, localStart, denseMode;
    std::vector<std::array<Value, 4>> qFrag; // per 16-wide k-step of D
    /// Δ's rows: the partials, keys per split, the split and the split
    /// count, the row layout, and the positions of this lane's two rows.
    Value partO, partL, kps, rowsAfter, split, splits;
    DeltaRows rows;
    /// Rows this call uses per head (strided + tail, at least 1 for the
    /// divisions) and the CTA rows of a KV head's group, G of them.
    Value usedRows, packedRows;
    Value lanePos[2];
  };

  /// Loop-carried state: O (D/8 tiles x 4), m (2 rows), l (2 rows).
  struct State {
    std::vector<std::array<Value, 4>> o;
    Value m[2], l[2];
    SmallVector<Value> flat() const {
      SmallVector<Value> v;
      for (auto &t : o)
        v.append(t.begin(), t.end());
      v.append({m[0], m[1], l[0], l[1]});
      return v;
    }
    static State unflat(ValueRange v, int64_t tiles) {
      State s;
      for (int64_t t = 0; t < tiles; ++t)
        s.o.push_back({v[4 * t], v[4 * t + 1], v[4 * t + 2], v[4 * t + 3]});
      s.m[0] = v[4 * tiles];
      s.m[1] = v[4 * tiles + 1];
      s.l[0] = v[4 * tiles + 2];
      s.l[1] = v[4 * tiles + 3];
      return s;
    }
  };

  /// Q's A fragment for k-step kk: lane l addresses row (l mod 16) of the
  /// warp's rows, column 16 kk + 8 (l / 16).
  std::array<Value, 4> loadQ(int64_t kk) {
    Value row = add(mul(warp, 16), rem(lane, 16));
    Value col = mul(div(lane, 16), 8);
    if (tile.addressBits == 32)
      return ldmatrix4(fragmentAt(c32(qRegion()), laneTile(row, col), 0,
                                  kk * kMmaK),
                       /*trans=*/false);
    return ldmatrix4(add(idx(qRegion()), swizzled(row, add(col, kk * kMmaK))),
                     /*trans=*/false);
  }

  /// Gather: the key in slot `slot` (index) of this CTA's chunk, -1 when the
  /// slot holds none: slots [0, sinks) are the sinks, then the nSel
  /// selected keys, then the local window from localStart on; in dense
  /// mode slot j is key j. Keys at or past Nk, and indices outside [0, Nk),
  /// are -1 (the kernel never reads past K).
  Value keyOfSlot(const Context &cx, Value slot) {
    const int64_t sinks = gather->sinks, slots = gather->slots;
    Value none = idx(-1);
    Value selSlot = minu(subSat(slot, idx(sinks)), idx(slots - 1));
    Value picked = b.create<arith::IndexCastOp>(
        b.getIndexType(),
        b.create<memref::LoadOp>(cx.indices, ValueRange{add(cx.selBase, selSlot)}));
    Value local = add(cx.localStart, sub(slot, add(cx.nSel, sinks)));
    Value key = select(ult(slot, idx(sinks)), slot,
                       select(ult(slot, add(cx.nSel, sinks)), picked, local));
    key = select(cx.denseMode, slot, key);
    Value inK = land(sle(idx(0), key), slt(key, cx.nk));
    return select(inK, key, none);
  }

  /// Gather: K and V rows of slots [v BN, v BN + BN) into stage `stage`,
  /// and each slot's key (or -1) into keysMem; rows without a key are
  /// zero-filled.
  void loadGathered(const Context &cx, Value v, Value stage) {
    int64_t chunksPerRow = D / 8, total = BN * chunksPerRow;
    for (int64_t i = 0; i < total / threads; ++i) {
      Value c = add(tid, i * threads);
      Value r = div(c, chunksPerRow), ch = rem(c, chunksPerRow);
      Value key = keyOfSlot(cx, add(mul(v, BN), r));
      auto first = b.create<scf::IfOp>(
          b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, ch, idx(0)),
          /*withElse=*/false);
      {
        OpBuilder::InsertionGuard g(b);
        b.setInsertionPointToStart(&first.getThenRegion().front());
        b.create<memref::StoreOp>(
            b.create<arith::IndexCastOp>(i32, key), keysMem,
            ValueRange{add(mul(stage, BN), r)});
      }
      Value dstOff = swizzled(r, mul(ch, 8));
      auto ifOp = b.create<scf::IfOp>(sle(idx(0), key), /*withElse=*/true);
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(&ifOp.getThenRegion().front());
      Value from = add(cx.kvBase, add(mul(key, D), mul(ch, 8)));
      for (auto [src, region] : {std::pair{cx.k, kRegion(stage)},
                                 std::pair{cx.v, vRegion(stage)}})
        cpAsync16(smem, add(region, dstOff), src, from);
      b.setInsertionPointToStart(&ifOp.getElseRegion().front());
      auto vecTy = VectorType::get({8}, elem);
      Value zero = b.create<arith::ConstantOp>(
          DenseElementsAttr::get(vecTy, b.getZeroAttr(elem)));
      b.create<vector::StoreOp>(zero, smem, ValueRange{add(kRegion(stage), dstOff)});
      b.create<vector::StoreOp>(zero, smem, ValueRange{add(vRegion(stage), dstOff)});
    }
  }

  /// The key tile visited at virtual position v.
  Value tileOf(const Context &cx, Value v) {
    return select(ult(v, cx.sinkTiles), v,
                  add(sub(v, cx.sinkTiles), cx.winStart));
  }

  void issueKvLoads(const Context &cx, Value v, Value nV) {
    // Prefetch the tile of virtual position v into stage v mod 2 when
    // v < nV; one commit group either way, so that wait_group counts stay
    // uniform.
    auto ifOp = b.create<scf::IfOp>(ult(v, nV), /*withElse=*/false);
    {
      OpBuilder::InsertionGuard g(b);
      b.setInsertionPointToStart(&ifOp.getThenRegion().front());
      Value stage = rem(v, 2);
      if (gather) {
        loadGathered(cx, v, stage);
      } else {
        Value row0 = mul(tileOf(cx, v), BN);
        loadTile(cx.k, cx.kvBase, row0, cx.nk, kRegion(stage), BN);
        loadTile(cx.v, cx.kvBase, row0, cx.nk, vRegion(stage), BN);
      }
    }
    b.create<NVVM::CpAsyncCommitGroupOp>();
  }

  /// Gather: fills cx's selection fields for this CTA's chunk and returns
  /// the number of slot tiles it visits.
  Value setUpGather(Context &cx, Value lastRow, Value batch, Value kvHead);

  /// Δ's rows: the row layout, this lane's row positions, and the key
  /// tiles of this CTA's split (virtual positions [0, nV), those in [vLo,
  /// vHi) unmasked).
  void setUpDeltaRows(Context &cx, Value &nV, Value &vLo, Value &vHi);
  /// Δ's rows: the partial (O / l, m + log2 l) of each valid row, or (0,
  /// -inf) where the split holds no key the row sees.
  void storeDeltaPartials(const Context &cx, const State &st, Value row0,
                          Value col, Value batch, Value kvHead);

  /// One K/V tile (virtual position v of nV): returns the new state.
  State step(const Context &cx, Value v, Value nV, const State &in,
             bool masked);
};

AttentionTileBuilder::State
AttentionTileBuilder::step(const Context &cx, Value v, Value nV,
                           const State &in, bool masked) {
  issueKvLoads(cx, add(v, 1), nV);
  b.create<NVVM::CpAsyncWaitGroupOp>(1u);
  b.create<gpu::BarrierOp>();
  Value stage = rem(v, 2);
  Value kReg = kRegion(stage), vReg = vRegion(stage);
  const int64_t nTilesS = BN / kMmaN, kSteps = D / kMmaK;
  Value zero = f32c(0.0);

  // S = Q K^T: ldmatrix x4 on K gives B for two n-tiles (16 keys) of one
  // 16-wide k-step. Lane l addresses key (l mod 8) + 8 (l / 16) and column
  // 8 ((l / 8) mod 2) of that block.
  std::vector<std::array<Value, 4>> s(static_cast<size_t>(nTilesS),
                                      {zero, zero, zero, zero});
  Value kRow = add(rem(lane, 8), mul(div(lane, 16), 8));
  Value kCol = mul(rem(div(lane, 8), 2), 8);
  const bool narrow = tile.addressBits == 32;
  LaneTile kLane, vLane;
  Value kReg32, vReg32;
  if (narrow) {
    kLane = laneTile(kRow, kCol);
    kReg32 = i32of(kReg);
  }
  for (int64_t kk = 0; kk < kSteps; ++kk) {
    // Q's fragments stay in registers for D <= 128; for D = 256 they would
    // take 64 of the 255 registers, so they are reloaded from shared memory.
    std::array<Value, 4> qa = cx.qFrag.empty() ? loadQ(kk) : cx.qFrag[kk];
    for (int64_t np = 0; np < nTilesS / 2; ++np) {
      auto r = ldmatrix4(narrow ? fragmentAt(kReg32, kLane, np * 16, kk * kMmaK)
                                : add(kReg, swizzled(add(kRow, np * 16),
                                                     add(kCol, kk * kMmaK))),
                         /*trans=*/false);
      s[2 * np] = mma(qa, r[0], r[1], s[2 * np]);
      s[2 * np + 1] = mma(qa, r[2], r[3], s[2 * np + 1]);
    }
  }

  // Rows of this lane: r0 = warp row + lane / 4 and r0 + 8 (C fragment
  // elements {0,1} and {2,3}); columns 2 (lane mod 4) + {0, 1}.
  Value negInf = f32c(-INFINITY);
  if (masked && gather) {
    // Each column's key (or -1) from keysMem: visible iff 0 <= key <= p.
    Value row0 = add(add(cx.q0, mul(warp, 16)), div(lane, 4));
    Value col0 = add(mul(stage, BN), mul(rem(lane, 4), 2));
    for (int64_t n = 0; n < nTilesS; ++n)
      for (int c = 0; c < 2; ++c) {
        Value key = b.create<arith::IndexCastOp>(
            b.getIndexType(),
            b.create<memref::LoadOp>(keysMem, ValueRange{add(col0, n * kMmaN + c)}));
        for (int h = 0; h < 2; ++h) {
          Value pos = add(add(row0, h * 8), cx.offset);
          Value ok = land(sle(idx(0), key), sle(key, pos));
          Value &sv = s[size_t(n)][2 * h + c];
          sv = b.create<arith::SelectOp>(ok, sv, negInf);
        }
      }
  } else if (masked) {
    Value row0 = add(add(cx.q0, mul(warp, 16)), div(lane, 4));
    Value key0 = add(mul(tileOf(cx, v), BN), mul(rem(lane, 4), 2));
    for (int64_t n = 0; n < nTilesS; ++n)
      for (int e = 0; e < 4; ++e) {
        Value key = add(key0, n * kMmaN + (e & 1));
        Value ok = ult(key, cx.nk);
        if (spec.causal) {
          Value pos = deltaStride ? cx.lanePos[e >> 1]
                                  : add(add(row0, (e >> 1) * 8), cx.offset);
          ok = b.create<arith::AndIOp>(ok, ule(key, pos));
          if (sliding) {
            // key < sinks, or pos - key <= window (key <= pos holds here;
            // where it does not, ok is already false).
            Value near = b.create<arith::OrIOp>(
                ult(key, idx(sliding->sinks)),
                ule(sub(pos, key), idx(sliding->window)));
            ok = b.create<arith::AndIOp>(ok, near);
          }
        }
        s[size_t(n)][e] = b.create<arith::SelectOp>(ok, s[size_t(n)][e], negInf);
      }
  }

  State out = in;
  Value alpha[2], mScaled[2];
  for (int h = 0; h < 2; ++h) {
    Value mx = in.m[h];
    for (int64_t n = 0; n < nTilesS; ++n)
      mx = fmax(mx, fmax(s[size_t(n)][2 * h], s[size_t(n)][2 * h + 1]));
    mx = quadMax(mx);
    out.m[h] = mx;
    // exp2((s - m) scale log2 e); a row with no key yet keeps m = -inf and
    // uses 0 as its reference so that exp2 sees -inf, not NaN.
    Value isInf = b.create<arith::CmpFOp>(arith::CmpFPredicate::OEQ, mx, negInf);
    mScaled[h] = b.create<arith::SelectOp>(isInf, zero, fmul(mx, cx.scaleLog2));
    alpha[h] = exp2(fsub(fmul(in.m[h], cx.scaleLog2), mScaled[h]));
  }
  // P, rounded to elem, as A fragments of P V (two n-tiles per 16 keys).
  Value rowSum[2] = {zero, zero};
  std::vector<std::array<Value, 4>> p(static_cast<size_t>(nTilesS));
  for (int64_t n = 0; n < nTilesS; ++n)
    for (int e = 0; e < 4; ++e) {
      Value x = fma(s[size_t(n)][e], cx.scaleLog2,
                    b.create<arith::NegFOp>(mScaled[e >> 1]));
      p[size_t(n)][e] = exp2(x);
      rowSum[e >> 1] = fadd(rowSum[e >> 1], p[size_t(n)][e]);
    }
  for (int h = 0; h < 2; ++h)
    out.l[h] = fma(in.l[h], alpha[h], rowSum[h]);
  for (auto &o : out.o)
    for (int e = 0; e < 4; ++e)
      o[e] = fmul(o[e], alpha[e >> 1]);

  // O += P V: ldmatrix x4 .trans on V gives B for two 8-wide column tiles
  // of one 16-key step. Lane l addresses key (l mod 8) + 8 ((l / 8) mod 2)
  // and column 8 (l / 16).
  Value vRow = add(rem(lane, 8), mul(rem(div(lane, 8), 2), 8));
  Value vCol = mul(div(lane, 16), 8);
  if (narrow) {
    vLane = laneTile(vRow, vCol);
    vReg32 = i32of(vReg);
  }
  for (int64_t ks = 0; ks < BN / kMmaK; ++ks) {
    const auto &lo = p[size_t(2 * ks)], &hi = p[size_t(2 * ks + 1)];
    std::array<Value, 4> a = {pack2(lo[0], lo[1]), pack2(lo[2], lo[3]),
                              pack2(hi[0], hi[1]), pack2(hi[2], hi[3])};
    for (int64_t dp = 0; dp < D / 16; ++dp) {
      auto r = ldmatrix4(narrow ? fragmentAt(vReg32, vLane, ks * kMmaK, dp * 16)
                                : add(vReg, swizzled(add(vRow, ks * kMmaK),
                                                     add(vCol, dp * 16))),
                         /*trans=*/true);
      out.o[size_t(2 * dp)] = mma(a, r[0], r[1], out.o[size_t(2 * dp)]);
      out.o[size_t(2 * dp + 1)] = mma(a, r[2], r[3], out.o[size_t(2 * dp + 1)]);
    }
  }
  // Every warp is done with this stage before the next prefetch reuses it.
  b.create<gpu::BarrierOp>();
  return out;
}

Value AttentionTileBuilder::setUpGather(Context &cx, Value lastRow,
                                        Value batch, Value kvHead) {
  const int64_t sinks = gather->sinks, slots = gather->slots,
                window = gather->window, chunk = gather->chunk;
  // The CTA's rows lie in one chunk (chunk is a multiple of BM).
  Value c = div(cx.q0, chunk);
  cx.s0 = add(cx.offset, mul(c, chunk));
  Value hs = selHeads == 1 ? idx(0) : kvHead;
  Value chunks = ceilDiv(cx.nq, chunk);
  cx.selBase = mul(add(mul(add(mul(batch, selHeads), hs), chunks), c),
                   slots);
  // nSel: the selected entries, ascending with the unused slots (-1) last
  // (attn.select's contract), found by binary search.
  Value lo = idx(0), hi = idx(slots);
  for (int64_t span = slots; span > 0; span /= 2) {
    Value mid = minu(div(add(lo, hi), 2), idx(slots - 1));
    Value got = b.create<memref::LoadOp>(cx.indices,
                                         ValueRange{add(cx.selBase, mid)});
    Value live = ult(lo, hi);
    Value used = b.create<arith::CmpIOp>(arith::CmpIPredicate::sge, got,
                                         i32c(0));
    Value unused = b.create<arith::CmpIOp>(arith::CmpIPredicate::slt, got,
                                           i32c(0));
    lo = select(land(live, used), add(mid, 1), lo);
    hi = select(land(live, unused), mid, hi);
  }
  // floor(log2(slots)) + 1 = ceil(log2(slots + 1)) steps: lo == hi now.
  cx.nSel = lo;
  // The local window [max(sinks, s0 - window), p1] of the CTA's last row.
  cx.localStart = maxs(idx(sinks), sub(cx.s0, idx(window)));
  Value end = add(cx.offset, lastRow); // p1 + 1
  Value nLocal = maxs(sub(end, cx.localStart), idx(0));
  // Dense fallback (attn.sparse_attention: a context of at most sinks +
  // slots + window keys is dense attention): slots are keys [0, p1].
  cx.denseMode = ule(cx.nk, idx(sinks + slots + window));
  Value nSlots = select(cx.denseMode, minu(end, cx.nk),
                        add(add(idx(sinks), cx.nSel), nLocal));
  return ceilDiv(nSlots, BN);
}

void AttentionTileBuilder::setUpDeltaRows(Context &cx, Value &nV, Value &vLo,
                                          Value &vHi) {
  const int64_t s = deltaStride;
  cx.rows = deltaRows(cx.nq, cx.rowsAfter, s);
  Value strided = cx.rows.strided;
  Value U = maxu(add(strided, cx.rows.tail), idx(1));
  cx.usedRows = U;
  cx.packedRows = mul(add(strided, cx.rows.tail), spec.hq / spec.hkv);
  auto divU = [&](Value x) { return b.create<arith::DivUIOp>(x, U); };
  auto remU = [&](Value x) { return b.create<arith::RemUIOp>(x, U); };
  Value row0 = add(add(cx.q0, mul(warp, 16)), div(lane, 4));
  for (int h = 0; h < 2; ++h)
    cx.lanePos[h] = add(cx.offset, deltaQueryRow(cx.rows, cx.nq,
                                                 remU(add(row0, h * 8)), s));
  // The CTA's valid rows [q0, rhoEnd) hold Δ rows [ra, rb) when they lie in
  // one head's segment, else (conservatively) all of [0, U). Of those, the
  // strided ones [ra, sEnd) are query rows ra s ... (sEnd - 1) s, the tail
  // ones [tLo, rb) from nq - tail on; minQ and maxQ bound their query rows.
  Value rhoEnd = minu(add(cx.q0, BM), cx.packedRows);
  Value last = sub(rhoEnd, 1);
  Value inOne = b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, divU(cx.q0),
                                        divU(last));
  Value ra = select(inOne, remU(cx.q0), idx(0));
  Value rb = select(inOne, add(remU(last), 1), U);
  Value sEnd = minu(rb, strided);
  Value tLo = maxu(ra, strided);
  Value hasS = ult(ra, strided), hasT = ult(tLo, rb);
  Value tail0 = sub(cx.nq, cx.rows.tail);
  Value minS = mul(ra, s), maxS = mul(sub(sEnd, 1), s);
  Value minT = add(tail0, sub(tLo, strided)),
        maxT = add(tail0, sub(sub(rb, 1), strided));
  Value minQ = select(hasS, select(hasT, minu(minS, minT), minS), minT);
  Value maxQ = select(hasS, select(hasT, maxu(maxS, maxT), maxS), maxT);
  // Keys [kBegin, kEnd): the split's, up to the last row's position.
  Value kBegin = mul(cx.split, cx.kps);
  Value kEnd = minu(minu(add(kBegin, cx.kps), cx.nk),
                    add(add(cx.offset, maxQ), 1));
  kEnd = select(ult(cx.q0, rhoEnd), kEnd, kBegin);
  Value tFirst = div(kBegin, BN); // keysPerSplit is a multiple of BN
  Value tEnd = maxu(tFirst, ceilDiv(kEnd, BN));
  // Unmasked: whole tiles inside K at or below the first row's position.
  Value uEnd = minu(div(add(add(cx.offset, minQ), 1), BN), div(cx.nk, BN));
  uEnd = minu(maxu(uEnd, tFirst), tEnd);
  cx.sinkTiles = idx(0);
  cx.winStart = tFirst;
  nV = sub(tEnd, tFirst);
  vLo = idx(0);
  vHi = sub(uEnd, tFirst);
}

void AttentionTileBuilder::storeDeltaPartials(const Context &cx, const State &st,
                                              Value row0, Value col,
                                              Value batch, Value kvHead) {
  Value zero = f32c(0.0), one = f32c(1.0);
  const int64_t G = spec.hq / spec.hkv;
  for (int h = 0; h < 2; ++h) {
    Value l = quadSum(st.l[h]);
    Value rho = add(row0, h * 8);
    ifThen(ult(rho, cx.packedRows), [&] {
      // Row rho is Δ row r of query head kvHead G + g; partO [B, Hq, R, S,
      // D], partL [B, Hq, R, S] (log2 domain).
      Value g = b.create<arith::DivUIOp>(rho, cx.usedRows);
      Value r = b.create<arith::RemUIOp>(rho, cx.usedRows);
      Value qHead = add(mul(kvHead, G), g);
      Value prow = add(mul(add(mul(add(mul(batch, spec.hq), qHead), cx.rows.rows), r),
                           cx.splits),
                       cx.split);
      Value empty = b.create<arith::CmpFOp>(arith::CmpFPredicate::OEQ, l, zero);
      Value inv = b.create<arith::DivFOp>(one, l);
      for (int64_t n = 0; n < D / kMmaN; ++n) {
        Value x = select(empty, zero, fmul(st.o[size_t(n)][2 * h], inv));
        Value y = select(empty, zero, fmul(st.o[size_t(n)][2 * h + 1], inv));
        Value v = b.create<vector::FromElementsOp>(VectorType::get({2}, f32),
                                                   ValueRange{x, y});
        b.create<vector::StoreOp>(
            v, cx.partO, ValueRange{add(mul(prow, D), add(col, n * kMmaN))});
      }
      ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, rem(lane, 4), idx(0)),
             [&] {
               Value lse = fadd(fmul(st.m[h], cx.scaleLog2), log2(l));
               sts(select(empty, negInf(), lse), cx.partL, prow);
             });
    });
  }
}

void AttentionTileBuilder::build(gpu::GPUFuncOp fn) {
  Block &entry = fn.getBody().front();
  b.setInsertionPointToStart(&entry);
  Context cx;
  unsigned a = 0;
  cx.q = entry.getArgument(a++);
  cx.k = entry.getArgument(a++);
  cx.v = entry.getArgument(a++);
  if (gather)
    cx.indices = entry.getArgument(a++);
  cx.out = entry.getArgument(a++);
  if (spec.withLse)
    cx.lse = entry.getArgument(a++);
  if (deltaStride) {
    cx.partO = entry.getArgument(a++);
    cx.partL = entry.getArgument(a++);
  }
  cx.nq = entry.getArgument(a++);
  cx.nk = entry.getArgument(a++);
  if (deltaStride) {
    cx.kps = entry.getArgument(a++);
    cx.rowsAfter = entry.getArgument(a++);
  }

  tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
  lane = rem(tid, 32);
  warp = div(tid, 32);
  Value qTile, head = b.create<gpu::BlockIdOp>(gpu::Dimension::y), batch;
  if (deltaStride) {
    // Grid (row tiles, Hkv, S B): a CTA's rows are (query head g of the KV
    // head, Δ row r) pairs, g-major, so the G heads share each K/V tile;
    // the CTAs of one key split are adjacent (their keys stay in L2).
    qTile = b.create<gpu::BlockIdOp>(gpu::Dimension::x);
    Value z = b.create<gpu::BlockIdOp>(gpu::Dimension::z);
    cx.splits = b.create<arith::DivUIOp>(add(cx.nk, sub(cx.kps, idx(1))), cx.kps);
    cx.split = b.create<arith::RemUIOp>(z, cx.splits);
    batch = b.create<arith::DivUIOp>(z, cx.splits);
  } else {
    // Longest causal CTAs first: block x counts query tiles from the end.
    Value tiles = ceilDiv(cx.nq, BM);
    qTile = sub(sub(tiles, 1), b.create<gpu::BlockIdOp>(gpu::Dimension::x));
    batch = b.create<gpu::BlockIdOp>(gpu::Dimension::z);
  }
  const int64_t G = spec.hq / spec.hkv;
  Value kvHead = deltaStride ? head : div(head, G);
  cx.q0 = mul(qTile, BM);
  cx.offset = spec.offset ? idx(*spec.offset) : sub(cx.nk, cx.nq);
  // Δ's rows: the first query head of the KV head's group.
  cx.qBase = mul(mul(add(mul(batch, spec.hq), deltaStride ? mul(head, G) : head),
                     cx.nq),
                 D);
  cx.kvBase = mul(mul(add(mul(batch, spec.hkv), kvHead), cx.nk), D);
  cx.scaleLog2 = f32c(spec.scale * M_LOG2E);

  auto dyn = b.create<gpu::DynamicSharedMemoryOp>(MemRefType::get(
      {ShapedType::kDynamic}, b.getI8Type(), AffineMap(),
      gpu::AddressSpaceAttr::get(b.getContext(),
                                 gpu::AddressSpace::Workgroup)));
  auto smemTy = MemRefType::get(
      {(BM + 4 * BN) * D}, elem, AffineMap(),
      gpu::AddressSpaceAttr::get(b.getContext(), gpu::AddressSpace::Workgroup));
  smem = b.create<memref::ViewOp>(smemTy, dyn, idx(0), ValueRange{});
  if (gather)
    keysMem = b.create<memref::ViewOp>(
        MemRefType::get({2 * BN}, i32, AffineMap(),
                        gpu::AddressSpaceAttr::get(b.getContext(),
                                                   gpu::AddressSpace::Workgroup)),
        dyn, idx((BM + 4 * BN) * D * 2), ValueRange{});

  // Key tiles: all of K, or (causal) up to this CTA's last row; those in
  // [uLo, uHi) need no mask (every key is below every row's diagonal,
  // inside K and, with a window, inside every row's window).
  Value nTiles = ceilDiv(cx.nk, BN);
  Value uHi = div(cx.nk, BN), uLo = idx(0);
  Value lastRow = minu(add(cx.q0, BM), cx.nq);
  if (spec.causal) {
    nTiles = minu(nTiles, ceilDiv(add(cx.offset, lastRow), BN));
    uHi = minu(uHi, div(add(add(cx.offset, cx.q0), 1), BN));
  }
  uHi = minu(uHi, nTiles);
  cx.sinkTiles = cx.winStart = idx(0);
  if (sliding) {
    // The CTA's rows sit at positions [p0, p1]: they need the sink tiles
    // and the tiles from p0 - window on; a tile is unmasked from
    // p1 - window on (the last row's window is the narrowest).
    Value p0 = add(cx.offset, cx.q0), p1 = sub(add(cx.offset, lastRow), 1);
    cx.sinkTiles = minu(idx(ceilDivConst(sliding->sinks, BN)), nTiles);
    cx.winStart = minu(maxu(cx.sinkTiles,
                            div(subSat(p0, idx(sliding->window)), BN)),
                       nTiles);
    uLo = ceilDiv(subSat(p1, idx(sliding->window)), BN);
    uLo = minu(maxu(uLo, cx.winStart), nTiles);
    uHi = maxu(uHi, uLo);
  }
  // Virtual positions: [0, sinkTiles) sinks; then window tiles
  // [winStart, nTiles) at positions from sinkTiles on.
  Value nV = add(cx.sinkTiles, sub(nTiles, cx.winStart));
  Value vLo = add(cx.sinkTiles, sub(uLo, cx.winStart));
  Value vHi = add(cx.sinkTiles, sub(uHi, cx.winStart));
  if (gather)
    nV = setUpGather(cx, lastRow, batch, kvHead);
  if (deltaStride)
    setUpDeltaRows(cx, nV, vLo, vHi);

  // Prologue: Q and the first K/V tile in one group.
  if (deltaStride)
    loadTile(cx.q, cx.qBase, cx.q0, cx.packedRows, idx(qRegion()), BM,
             [&](Value rho) -> Value {
               Value g = b.create<arith::DivUIOp>(rho, cx.usedRows);
               Value r = b.create<arith::RemUIOp>(rho, cx.usedRows);
               return add(mul(g, cx.nq),
                          deltaQueryRow(cx.rows, cx.nq, r, deltaStride));
             });
  else
    loadTile(cx.q, cx.qBase, cx.q0, cx.nq, idx(qRegion()), BM);
  issueKvLoads(cx, idx(0), nV);
  b.create<NVVM::CpAsyncWaitGroupOp>(0u);
  b.create<gpu::BarrierOp>();
  if (D <= 128)
    for (int64_t kk = 0; kk < D / kMmaK; ++kk)
      cx.qFrag.push_back(loadQ(kk));

  Value zero = f32c(0.0), negInf = f32c(-INFINITY);
  State init;
  init.o.assign(size_t(D / kMmaN), {zero, zero, zero, zero});
  init.m[0] = init.m[1] = negInf;
  init.l[0] = init.l[1] = zero;
  State st = init;
  auto loop = [&](Value lo, Value hi, bool masked) {
    auto forOp = b.create<scf::ForOp>(lo, hi, idx(1), st.flat());
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(forOp.getBody());
    State in = State::unflat(forOp.getRegionIterArgs(), D / kMmaN);
    State next = step(cx, forOp.getInductionVar(), nV, in, masked);
    b.create<scf::YieldOp>(next.flat());
    return State::unflat(forOp.getResults(), D / kMmaN);
  };
  // Dense: vLo = 0, so the first loop is empty.
  if (gather) {
    // Every slot tile is masked: its keys come from keysMem.
    st = loop(idx(0), nV, /*masked=*/true);
  } else {
    if (sliding)
      st = loop(idx(0), vLo, /*masked=*/true);
    st = loop(vLo, vHi, /*masked=*/false);
    st = loop(vHi, nV, /*masked=*/true);
  }

  // Epilogue: full row sums, O / l, stores of the valid rows.
  Value one = f32c(1.0);
  Value row0 = add(add(cx.q0, mul(warp, 16)), div(lane, 4));
  Value col = mul(rem(lane, 4), 2);
  if (deltaStride) {
    storeDeltaPartials(cx, st, row0, col, batch, kvHead);
    b.create<gpu::ReturnOp>();
    return;
  }
  Value oBase = cx.qBase;
  for (int h = 0; h < 2; ++h) {
    Value l = quadSum(st.l[h]);
    Value inv = b.create<arith::DivFOp>(one, l);
    Value row = add(row0, h * 8);
    auto ifOp = b.create<scf::IfOp>(ult(row, cx.nq), /*withElse=*/false);
    OpBuilder::InsertionGuard g(b);
    b.setInsertionPointToStart(&ifOp.getThenRegion().front());
    Value rowOff = add(oBase, mul(row, D));
    for (int64_t n = 0; n < D / kMmaN; ++n) {
      Value x = fmul(st.o[size_t(n)][2 * h], inv);
      Value y = fmul(st.o[size_t(n)][2 * h + 1], inv);
      Value v = b.create<vector::FromElementsOp>(VectorType::get({2}, f32),
                                                 ValueRange{x, y});
      v = b.create<arith::TruncFOp>(VectorType::get({2}, elem), v);
      b.create<vector::StoreOp>(v, cx.out,
                                ValueRange{add(rowOff, add(col, n * kMmaN))});
    }
    if (spec.withLse) {
      // lse = ln(sum exp(s scale)) = (m scale log2 e + log2 l) ln 2.
      auto lane0 = b.create<scf::IfOp>(
          b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, rem(lane, 4), idx(0)),
          /*withElse=*/false);
      b.setInsertionPointToStart(&lane0.getThenRegion().front());
      Value lse = fmul(fadd(fmul(st.m[h], cx.scaleLog2),
                            log2(l)),
                       f32c(M_LN2));
      Value at = add(div(cx.qBase, D), row);
      b.create<memref::StoreOp>(lse, cx.lse, ValueRange{at});
    }
  }
  b.create<gpu::ReturnOp>();
}

} // namespace

std::string tensorCoreUnsupported(const manifest::AttentionParams &spec,
                                  const TensorCoreTile &tile,
                                  const manifest::SparsePattern *sparse,
                                  int64_t selHeads) {
  using manifest::DType;
  if (sparse && (!spec.causal || sparse->sinks < 0 || sparse->window < 0 ||
                 sparse->slots < 0 || sparse->chunk < 1))
    return "this sparse pattern (the tensor-core kernel takes causal window + "
           "sinks, or sinks + a selection + a window)";
  if (gathers(sparse)) {
    int64_t rows = int64_t(tile.warps) * kMmaM;
    if (sparse->chunk % rows != 0)
      return "selection chunk " + std::to_string(sparse->chunk) +
             " (the tensor-core kernel needs a multiple of its " +
             std::to_string(rows) + " query rows per CTA)";
    if (selHeads != 1 && selHeads != spec.hkv)
      return "selection heads " + std::to_string(selHeads) +
             " (1 or the " + std::to_string(spec.hkv) + " KV heads)";
    if (sparse->sinks + sparse->slots + sparse->window > (int64_t(1) << 31) - 1)
      return "a pattern of more than 2^31 - 1 keys";
  }
  if (spec.dtype != DType::BFloat16 && spec.dtype != DType::Float16)
    return std::string("query type ") + manifest::toString(spec.dtype) +
           " (the tensor-core kernel takes bfloat16 or float16)";
  if (spec.kvDtype != spec.dtype)
    return std::string("key/value type ") + manifest::toString(spec.kvDtype) +
           " differs from the query's " + manifest::toString(spec.dtype);
  if (spec.d != spec.dv)
    return "value head dim " + std::to_string(spec.dv) +
           " differs from the query's " + std::to_string(spec.d);
  if (spec.d != 64 && spec.d != 128 && spec.d != 256)
    return "head dim " + std::to_string(spec.d) + " (supported: 64, 128, 256)";
  if (!(spec.scale > 0))
    return "scale " + std::to_string(spec.scale) + " (must be > 0)";
  if (tile.warps < 1 || tile.warps > 8)
    return "tile warps " + std::to_string(tile.warps) + " (1 to 8)";
  if (tile.addressBits != 32 && tile.addressBits != 64)
    return "address bits " + std::to_string(tile.addressBits) + " (32 or 64)";
  if (tile.keyTile % 16 != 0 || tile.keyTile < 16 || tile.keyTile > 256)
    return "key tile " + std::to_string(tile.keyTile) +
           " (a multiple of 16 from 16 to 256)";
  if ((tile.keyTile * spec.d / 8) % (tile.warps * 32) != 0 ||
      (tile.warps * 16 * spec.d / 8) % (tile.warps * 32) != 0)
    return "key tile " + std::to_string(tile.keyTile) + " x head dim " +
           std::to_string(spec.d) + " does not split into 16-byte copies over " +
           std::to_string(tile.warps * 32) + " threads";
  int64_t bytes = sharedBytesOf(spec, tile, sparse);
  if (bytes > kTensorCoreMaxSharedBytes)
    return "shared memory " + std::to_string(bytes) + " bytes per CTA (limit " +
           std::to_string(kTensorCoreMaxSharedBytes) + ")";
  return "";
}

PtxKernel buildTensorCoreAttention(const manifest::AttentionParams &spec,
                                   const TensorCoreTile &tile,
                                   const std::string &function,
                                   const manifest::SparsePattern *sparse,
                                   int64_t selHeads) {
  if (std::string why = tensorCoreUnsupported(spec, tile, sparse, selHeads);
      !why.empty())
    throw std::runtime_error("no tensor-core attention kernel for " + why);
  GpuKernelModule gm(function + "_module", "tensor-core attention");
  ImplicitLocOpBuilder &b = gm.builder();
  Type elem = spec.dtype == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                      : Type(b.getF16Type());
  auto dynamic = [&](Type t) { return gm.buffer(t); };
  SmallVector<Type> args = {dynamic(elem), dynamic(elem), dynamic(elem)};
  if (gathers(sparse))
    args.push_back(dynamic(b.getI32Type())); // indices
  args.push_back(dynamic(elem));             // out
  if (spec.withLse)
    args.push_back(dynamic(b.getF32Type()));
  args.push_back(b.getIndexType()); // Nq
  args.push_back(b.getIndexType()); // Nk
  int threads = tile.warps * 32;
  auto fn = gm.addKernel(function, args, threads);
  AttentionTileBuilder(b, spec, tile, sparse, selHeads).build(fn);

  return gm.kernel(function, threads, tile.warps * kMmaM,
                   sharedBytesOf(spec, tile, sparse));
}

std::string denseRowsUnsupported(const manifest::AttentionParams &spec,
                                 const TensorCoreTile &tile, int64_t stride) {
  if (stride < 1)
    return "stride " + std::to_string(stride) + " (must be >= 1)";
  if (!spec.causal)
    return "non-causal dense rows (attn.dense_rows is causal)";
  if (spec.withLse)
    return "an LSE output (attn.dense_rows has none)";
  if (ptx_abi::kRowsSplitQuantum % tile.keyTile != 0)
    return "key tile " + std::to_string(tile.keyTile) + " (must divide " +
           std::to_string(ptx_abi::kRowsSplitQuantum) + ", the split quantum)";
  return tensorCoreUnsupported(spec, tile);
}

PtxKernel buildDenseRowsAttention(const manifest::AttentionParams &spec,
                                  const TensorCoreTile &tile,
                                  const std::string &prefix, int64_t stride) {
  if (std::string why = denseRowsUnsupported(spec, tile, stride); !why.empty())
    throw std::runtime_error("no tensor-core dense-rows kernel for " + why);
  GpuKernelModule gm(prefix + "_module", "tensor-core dense-rows attention");
  ImplicitLocOpBuilder &b = gm.builder();
  Type elem = spec.dtype == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                      : Type(b.getF16Type());
  Type f32 = b.getF32Type(), index = b.getIndexType();
  // q, k, v, rows, partO, partL, Nq, Nk, keysPerSplit, rowsAfter: the
  // decode-v1 parameters (no lse) and rowsAfter.
  SmallVector<Type> args = {gm.buffer(elem), gm.buffer(elem), gm.buffer(elem),
                            gm.buffer(elem), gm.buffer(f32),  gm.buffer(f32),
                            index,           index,           index,
                            index};
  int threads = tile.warps * 32;
  AttentionTileBuilder(b, spec, tile, nullptr, 1, stride)
      .build(gm.addKernel(prefix + "_split", args, threads));
  buildLseMerge(b, gm.addKernel(prefix + "_merge", args, int(kDecodeMergeThreads)),
                spec, stride);
  return gm.kernel(prefix, threads, tile.warps * kMmaM,
                   std::max(sharedBytesOf(spec, tile, nullptr),
                            ptx_abi::mergeSharedBytes(spec.d)),
                   "dense-rows-v1");
}

} // namespace deltaflow::compiler
