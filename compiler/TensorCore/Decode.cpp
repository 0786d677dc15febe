//===- Decode.cpp - split-K decode attention for 16-bit K/V, built in MLIR ===//
//
// Decode (a few query rows against a long K/V) is bound by the bandwidth of
// reading K and V once, not by arithmetic, so it runs on the SIMT units as
// Flash-Decoding does (Dao, Haziza, Massa, Sizov, "Flash-Decoding for
// long-context inference", 2023): the keys are split into S ranges, one CTA
// per (range, query row, KV head, batch) reads its range once for all G
// query heads of the KV head, and a second kernel merges the S partial
// outputs by their log-sum-exp (the merge of DESIGN's "Scale-out"):
//   L = m + log Σ_s exp(L_s − m),  O = Σ_s exp(L_s − L) O_s.
//
// split: 4 warps; a key row of D 16-bit elements is read by D/8 lanes with
//   one 16-byte load each (ld.global.v4), so a warp reads 32/(D/8) adjacent
//   rows per load and U rows per lane group are in flight per step; the
//   next step's U rows are loaded before this step's arithmetic (register
//   double buffering, DecodeTile::prefetch), so the loads of one step
//   overlap the math of the previous one. Per
//   query head g a lane keeps its 8 elements of q (pre-scaled by
//   scale·log2 e), the running max m, the sum l and its 8 elements of the
//   output o (f32); the dot product is summed across the row's lanes by
//   xor shuffles. The online softmax (exp2, FlashAttention-2's rescaling
//   once per U keys) then the lane groups and warps are merged; the CTA
//   writes O_s = o / l and L_s = m + log2 l (log2 domain), or (0, −inf)
//   for a range with no visible key.
// merge: 256 threads per (row, query head, batch): the max and the sum of
//   exp2(L_s − M) by block reductions, then O = Σ_s exp2(L_s − M) O_s / Σ
//   with 4 consecutive elements per thread, converted to the output type;
//   LSE in natural log.
// Special values propagate as in the dense kernels: a +inf score makes its
// row NaN, NaN in K or V makes the rows that see it NaN.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/TensorCore.h"
#include "GpuKernelBuilder.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
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

class DecodeBuilder : GpuKernelBuilder {
public:
  DecodeBuilder(ImplicitLocOpBuilder &b, const manifest::AttentionParams &spec,
                const DecodeTile &tile = {}, int64_t deltaStride = 0)
      : GpuKernelBuilder(b), spec(spec), deltaStride(deltaStride),
        G(spec.hq / spec.hkv), D(spec.d),
        L(spec.d / 8), R(32 / (spec.d / 8)),
        U(tile.keysPerStep > 0 ? tile.keysPerStep : spec.hq / spec.hkv <= 4 ? 4 : 2),
        prefetch(tile.prefetch) {
    elem = spec.dtype == manifest::DType::BFloat16 ? Type(b.getBF16Type())
                                                   : Type(b.getF16Type());
  }
  void buildSplit(gpu::GPUFuncOp fn);
  void buildMerge(gpu::GPUFuncOp fn);
  Type elem;

private:
  const manifest::AttentionParams &spec;
  /// > 0: the merge of "dense-rows-v1" (Δ's rows; a trailing rowsAfter
  /// parameter, output rows as attn.dense_rows lays them out).
  const int64_t deltaStride;
  const int64_t G, D;
  const int64_t L; ///< lanes per key row (8 elements each)
  const int64_t R; ///< key rows per warp load
  const int64_t U; ///< key rows in flight per lane group per step
  const bool prefetch; ///< next step's loads issued before this step's math
  static constexpr int64_t W = kDecodeSplitThreads / 32;
  Value q, k, v, out, lse, partO, partL, nq, nk, kps, rowsAfter;
  Value tid, lane, warp;

  void bind(gpu::GPUFuncOp fn) {
    Block &e = fn.getBody().front();
    unsigned a = 0;
    for (Value *x : {&q, &k, &v, &out})
      *x = e.getArgument(a++);
    if (spec.withLse)
      lse = e.getArgument(a++);
    for (Value *x : {&partO, &partL, &nq, &nk, &kps})
      *x = e.getArgument(a++);
    if (deltaStride > 0)
      rowsAfter = e.getArgument(a++);
    tid = b.create<gpu::ThreadIdOp>(gpu::Dimension::x);
    lane = rem(tid, 32);
    warp = div(tid, 32);
  }
  Value splits() {
    return b.create<arith::DivUIOp>(add(nk, sub(kps, idx(1))), kps);
  }
  /// Keys that query row i sees: all Nk, or causally those at positions
  /// <= its own (offset + i, or Nk - Nq + i), clamped to [0, Nk].
  Value visible(Value i) {
    if (!spec.causal)
      return nk;
    Value pos = spec.offset ? add(idx(*spec.offset), i) : add(sub(nk, nq), i);
    return maxs(mins(add(pos, 1), nk), idx(0));
  }
  Value splat(Value x, int64_t n) {
    return b.create<vector::SplatOp>(VectorType::get({n}, f32), x);
  }
  Value vfma(Value a, Value x, Value y) { return b.create<vector::FMAOp>(a, x, y); }
  Value vmul(Value x, Value y) { return b.create<arith::MulFOp>(x, y); }
  /// Every element of an 8-wide vector shuffled by xor `off`.
  Value shuffleVec(Value vec, int off) {
    Value r = vec;
    for (int64_t e = 0; e < 8; ++e) {
      Value x = b.create<vector::ExtractOp>(vec, ArrayRef<int64_t>{e});
      r = b.create<vector::InsertOp>(shuffleXor(x, off), r, ArrayRef<int64_t>{e});
    }
    return r;
  }
  Value blockReduce(Value x, Value red, bool max);
};

void DecodeBuilder::buildSplit(gpu::GPUFuncOp fn) {
  // grid (S, Nq Hkv, B), kDecodeSplitThreads threads.
  bind(fn);
  const int64_t Hq = spec.hq, Hkv = spec.hkv, step = W * R * U;
  Value s = bid(gpu::Dimension::x), yi = bid(gpu::Dimension::y),
        bb = bid(gpu::Dimension::z);
  Value i = div(yi, Hkv), hk = rem(yi, Hkv);
  Value grp = div(lane, L), part = mul(rem(lane, L), 8);
  Value begin = mul(s, kps);
  Value end = minu(add(begin, kps), visible(i));
  auto vecE = VectorType::get({8}, elem), vecF = VectorType::get({8}, f32);
  const double scaleLog2 = spec.scale * M_LOG2E;
  // q as scalars: the dot products are chains of scalar FMAs.
  std::vector<std::vector<Value>> qs;
  for (int64_t g = 0; g < G; ++g) {
    Value at = add(mul(add(mul(add(mul(bb, Hq), add(mul(hk, G), idx(g))), nq), i), D), part);
    Value qv = vmul(b.create<arith::ExtFOp>(vecF, loadAligned16(q, at, vecE)),
                    splat(f32c(scaleLog2), 8));
    qs.emplace_back();
    for (int64_t e = 0; e < 8; ++e)
      qs.back().push_back(b.create<vector::ExtractOp>(qv, ArrayRef<int64_t>{e}));
  }
  Value zero = b.create<arith::ConstantOp>(DenseElementsAttr::get(vecF, 0.0f));
  SmallVector<Value> init;
  for (int64_t g = 0; g < G; ++g)
    init.append({negInf(), f32c(0), zero});
  Value rowBase = mul(add(mul(bb, Hkv), hk), nk); // first K/V row of the head
  // Loads past the range re-read its last key (a valid row even when the
  // range is empty: Nk >= 1 whenever a split CTA runs).
  Value lastKey = maxs(sub(end, 1), idx(0));
  auto keyOf = [&](Value it, int64_t t) {
    return add(add(it, t * W * R), add(mul(warp, R), grp));
  };
  // The U K and V rows of the step at `it`, all issued before any use.
  auto loadStep = [&](Value it, SmallVector<Value> &raw) {
    for (int64_t t = 0; t < U; ++t) {
      Value row = add(rowBase, minu(keyOf(it, t), lastKey));
      raw.push_back(loadReadOnly16(k, add(mul(row, D), part)));
      raw.push_back(loadReadOnly16(v, add(mul(row, D), part)));
    }
  };
  // With prefetch the loop carries the raw K/V of its step: the first
  // step's are loaded here, and each step loads the next step's before
  // its arithmetic (register double buffering).
  SmallVector<Value> pre;
  if (prefetch) {
    loadStep(begin, pre);
    init.append(pre);
  }
  auto loop = b.create<scf::ForOp>(begin, end, idx(step), init);
  {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(loop.getBody());
    Value it = loop.getInductionVar();
    auto state = loop.getRegionIterArgs();
    SmallVector<Value> raw, nextRaw;
    if (prefetch) {
      raw.append(state.begin() + 3 * G, state.end());
      loadStep(add(it, idx(step)), nextRaw);
    } else {
      loadStep(it, raw);
    }
    std::vector<Value> ok, kraw, vraw;
    for (int64_t t = 0; t < U; ++t) {
      ok.push_back(ult(keyOf(it, t), end));
      kraw.push_back(raw[size_t(2 * t)]);
      vraw.push_back(raw[size_t(2 * t + 1)]);
    }
    auto x = std::vector<std::vector<Value>>(size_t(U));
    for (int64_t t = 0; t < U; ++t) {
      std::vector<Value> kf = widen16(kraw[size_t(t)], elem);
      for (int64_t g = 0; g < G; ++g) {
        Value dot = fmul(qs[size_t(g)][0], kf[0]);
        for (int64_t e = 1; e < 8; ++e)
          dot = fma(qs[size_t(g)][size_t(e)], kf[size_t(e)], dot);
        for (int off = 1; off < L; off *= 2)
          dot = fadd(dot, shuffleXor(dot, off));
        x[size_t(t)].push_back(select(ok[size_t(t)], dot, negInf()));
      }
    }
    std::vector<Value> vf;
    for (int64_t t = 0; t < U; ++t)
      vf.push_back(widen16Vec(vraw[size_t(t)], elem));
    SmallVector<Value> next;
    for (int64_t g = 0; g < G; ++g) {
      Value m = state[size_t(3 * g)], l = state[size_t(3 * g + 1)],
            o = state[size_t(3 * g + 2)];
      Value mx = m;
      for (int64_t t = 0; t < U; ++t)
        mx = fmax(mx, x[size_t(t)][size_t(g)]);
      Value ref = softmaxRef(mx);
      Value alpha = exp2(fsub(m, ref));
      l = fmul(l, alpha);
      o = vmul(o, splat(alpha, 8));
      for (int64_t t = 0; t < U; ++t) {
        Value p = exp2(fsub(x[size_t(t)][size_t(g)], ref));
        l = fadd(l, p);
        o = vfma(splat(p, 8), vf[size_t(t)], o);
      }
      next.append({mx, l, o});
    }
    next.append(nextRaw);
    b.create<scf::YieldOp>(next);
  }
  std::vector<Value> m, l, o;
  for (int64_t g = 0; g < G; ++g) {
    m.push_back(loop.getResult(unsigned(3 * g)));
    l.push_back(loop.getResult(unsigned(3 * g + 1)));
    o.push_back(loop.getResult(unsigned(3 * g + 2)));
  }
  // The lane groups of each warp (disjoint keys), by xor shuffles.
  for (int off = int(L); off < 32; off *= 2)
    for (int64_t g = 0; g < G; ++g) {
      Value m2 = shuffleXor(m[size_t(g)], off), l2 = shuffleXor(l[size_t(g)], off);
      Value o2 = shuffleVec(o[size_t(g)], off);
      Value mm = fmax(m[size_t(g)], m2), ref = softmaxRef(mm);
      Value a1 = exp2(fsub(m[size_t(g)], ref)), a2 = exp2(fsub(m2, ref));
      l[size_t(g)] = fadd(fmul(l[size_t(g)], a1), fmul(l2, a2));
      o[size_t(g)] = vfma(o2, splat(a2, 8), vmul(o[size_t(g)], splat(a1, 8)));
      m[size_t(g)] = mm;
    }
  // The warps, through shared memory: stats [W, G, 2], then o [W, G, D].
  Value dyn = dynamicShared();
  Value stat = workgroup(dyn, f32, W * G * 2, 0);
  Value osm = workgroup(dyn, f32, W * G * D, W * G * 2 * 4);
  for (int64_t g = 0; g < G; ++g) {
    Value wg = add(mul(warp, G), idx(g));
    ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, lane, idx(0)), [&] {
      sts(m[size_t(g)], stat, mul(wg, 2));
      sts(l[size_t(g)], stat, add(mul(wg, 2), 1));
    });
    ifThen(ult(lane, idx(L)), [&] {
      for (int64_t e = 0; e < 8; ++e)
        sts(b.create<vector::ExtractOp>(o[size_t(g)], ArrayRef<int64_t>{e}), osm,
            add(add(mul(wg, D), part), e));
    });
  }
  b.create<gpu::BarrierOp>();
  Value S = splits();
  for (int64_t r0 = 0; r0 < G * D; r0 += kDecodeSplitThreads) {
    Value at = add(tid, r0);
    ifThen(ult(at, idx(G * D)), [&] {
      Value g = div(at, D), e = rem(at, D);
      Value mm = negInf();
      for (int64_t w = 0; w < W; ++w)
        mm = fmax(mm, lds(stat, mul(add(idx(w * G), g), 2)));
      Value ref = softmaxRef(mm);
      Value lsum = f32c(0), osum = f32c(0);
      for (int64_t w = 0; w < W; ++w) {
        Value wg = add(idx(w * G), g);
        Value a = exp2(fsub(lds(stat, mul(wg, 2)), ref));
        lsum = fma(lds(stat, add(mul(wg, 2), 1)), a, lsum);
        osum = fma(lds(osm, add(mul(wg, D), e)), a, osum);
      }
      Value empty = b.create<arith::CmpFOp>(arith::CmpFPredicate::OEQ, lsum, f32c(0));
      Value h = add(mul(hk, G), g);
      Value row = add(mul(add(mul(add(mul(bb, Hq), h), nq), i), S), s);
      sts(select(empty, f32c(0), b.create<arith::DivFOp>(osum, lsum)), partO,
          add(mul(row, D), e));
      ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, e, idx(0)), [&] {
        sts(select(empty, negInf(), fadd(ref, log2(lsum))), partL, row);
      });
    });
  }
  b.create<gpu::ReturnOp>();
}

/// The max (or sum) of `x` over the CTA's kDecodeMergeThreads threads;
/// `red` holds one f32 per warp.
Value DecodeBuilder::blockReduce(Value x, Value red, bool max) {
  for (int off = 16; off >= 1; off /= 2)
    x = max ? fmax(x, shuffleXor(x, off)) : fadd(x, shuffleXor(x, off));
  ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, lane, idx(0)),
         [&] { sts(x, red, warp); });
  b.create<gpu::BarrierOp>();
  Value r = lds(red, idx(0));
  for (int64_t w = 1; w < kDecodeMergeThreads / 32; ++w)
    r = max ? fmax(r, lds(red, idx(w))) : fadd(r, lds(red, idx(w)));
  return r;
}

void DecodeBuilder::buildMerge(gpu::GPUFuncOp fn) {
  // grid (Nq, Hq, B), kDecodeMergeThreads threads.
  bind(fn);
  constexpr int64_t T = kDecodeMergeThreads;
  const int64_t E = D / 4, P = T / E; // threads per partial row, phases
  Value i = bid(gpu::Dimension::x), h = bid(gpu::Dimension::y),
        bb = bid(gpu::Dimension::z);
  Value S = splits();
  // Decode: one output row per query row. Δ's rows: [B, Hq, R, D] with R =
  // ceil(Nq / stride) + deltaExtraRows(stride); rows past the strided ones
  // and this call's tail are zero.
  Value rowsPerHead = nq, used;
  if (deltaStride > 0) {
    DeltaRows g = deltaRows(nq, rowsAfter, deltaStride);
    rowsPerHead = g.rows;
    used = ult(i, add(g.strided, g.tail));
  }
  Value qrow = add(mul(add(mul(bb, spec.hq), h), rowsPerHead), i);
  Value row0 = mul(qrow, S);
  // An unused Δ row reads no partial (the split wrote none).
  Value bound = used ? select(used, S, idx(0)) : S;
  Value dyn = dynamicShared();
  Value redMax = workgroup(dyn, f32, T / 32, 0);
  Value redSum = workgroup(dyn, f32, T / 32, T / 32 * 4);
  Value acc = workgroup(dyn, f32, P * D, T / 32 * 8);
  auto strided = [&](Value from, int64_t stride, Value initial, auto body) {
    auto f = b.create<scf::ForOp>(from, bound, idx(stride), ValueRange{initial});
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(f.getBody());
    b.create<scf::YieldOp>(ValueRange{body(f.getInductionVar(), f.getRegionIterArgs()[0])});
    return f.getResult(0);
  };
  Value mloc = strided(tid, T, negInf(), [&](Value s, Value a) {
    return fmax(a, lds(partL, add(row0, s)));
  });
  Value ref = softmaxRef(blockReduce(mloc, redMax, true));
  Value lloc = strided(tid, T, f32c(0), [&](Value s, Value a) {
    return fadd(a, exp2(fsub(lds(partL, add(row0, s)), ref)));
  });
  Value lsum = blockReduce(lloc, redSum, false);
  // Phase ph sums partial rows ph, ph + P, ... for elements e4 .. e4 + 3.
  Value e4 = mul(rem(tid, E), 4), ph = div(tid, E);
  auto vec4 = VectorType::get({4}, f32);
  Value zero = b.create<arith::ConstantOp>(DenseElementsAttr::get(vec4, 0.0f));
  Value sumv = strided(ph, P, zero, [&](Value s, Value a) {
    Value w = exp2(fsub(lds(partL, add(row0, s)), ref));
    Value ov = loadAligned16(partO, add(mul(add(row0, s), D), e4), vec4, 4);
    return vfma(splat(w, 4), ov, a);
  });
  for (int64_t e = 0; e < 4; ++e)
    sts(b.create<vector::ExtractOp>(sumv, ArrayRef<int64_t>{e}), acc,
        add(add(mul(ph, D), e4), e));
  b.create<gpu::BarrierOp>();
  ifThen(ult(tid, idx(D)), [&] {
    Value o = f32c(0);
    for (int64_t p = 0; p < P; ++p)
      o = fadd(o, lds(acc, add(idx(p * D), tid)));
    o = b.create<arith::DivFOp>(o, lsum);
    if (used)
      o = select(used, o, f32c(0));
    sts(b.create<arith::TruncFOp>(elem, o), out, add(mul(qrow, D), tid));
    if (spec.withLse)
      ifThen(b.create<arith::CmpIOp>(arith::CmpIPredicate::eq, tid, idx(0)), [&] {
        sts(fmul(fadd(ref, log2(lsum)), f32c(M_LN2)), lse, qrow);
      });
  });
  b.create<gpu::ReturnOp>();
}

} // namespace

void buildLseMerge(ImplicitLocOpBuilder &b, gpu::GPUFuncOp fn,
                   const manifest::AttentionParams &spec, int64_t deltaStride) {
  DecodeBuilder(b, spec, {}, deltaStride).buildMerge(fn);
}

std::string decodeUnsupported(const manifest::AttentionParams &spec) {
  using manifest::DType;
  if (spec.dtype != DType::BFloat16 && spec.dtype != DType::Float16)
    return std::string("query type ") + manifest::toString(spec.dtype) +
           " (the decode kernel takes bfloat16 or float16)";
  if (spec.kvDtype != spec.dtype)
    return std::string("K/V type ") + manifest::toString(spec.kvDtype) +
           " differs from the query's " + manifest::toString(spec.dtype);
  if ((spec.d != 64 && spec.d != 128 && spec.d != 256) || spec.dv != spec.d)
    return "head dims " + std::to_string(spec.d) + "/" + std::to_string(spec.dv) +
           " (supported: 64, 128 or 256 with Dv == D)";
  if (spec.hkv < 1 || spec.hq % spec.hkv != 0 || spec.hq / spec.hkv > 8)
    return std::to_string(spec.hq) + " query heads over " +
           std::to_string(spec.hkv) + " KV heads (up to 8 per KV head)";
  if (!(spec.scale > 0) || !std::isfinite(spec.scale))
    return "scale " + std::to_string(spec.scale);
  if (decodeSharedBytes(spec) > kTensorCoreMaxSharedBytes)
    return "shared memory";
  return "";
}

int64_t decodeSharedBytes(const manifest::AttentionParams &spec) {
  int64_t G = spec.hkv > 0 ? spec.hq / spec.hkv : 0;
  int64_t split = (kDecodeSplitThreads / 32) * G * (spec.d + 2) * 4;
  int64_t merge = ptx_abi::mergeSharedBytes(spec.d);
  return std::max(split, merge);
}

PtxKernel buildDecodeAttention(const manifest::AttentionParams &spec,
                               const std::string &prefix, const DecodeTile &tile) {
  if (std::string why = decodeUnsupported(spec); !why.empty())
    throw std::runtime_error("no decode kernel for " + why);
  if (tile.keysPerStep != 0 && tile.keysPerStep != 1 && tile.keysPerStep != 2 &&
      tile.keysPerStep != 4 && tile.keysPerStep != 8)
    throw std::runtime_error("decode keys per step " + std::to_string(tile.keysPerStep) +
                             " (supported: 1, 2, 4 or 8)");
  GpuKernelModule gm(prefix + "_module", "decode attention");
  ImplicitLocOpBuilder &b = gm.builder();
  Type elem = DecodeBuilder(b, spec).elem, f32 = b.getF32Type();
  SmallVector<Type> args = {gm.buffer(elem), gm.buffer(elem), gm.buffer(elem),
                            gm.buffer(elem)};
  if (spec.withLse)
    args.push_back(gm.buffer(f32));
  args.append({gm.buffer(f32), gm.buffer(f32), b.getIndexType(), b.getIndexType(),
               b.getIndexType()});
  DecodeBuilder(b, spec, tile).buildSplit(gm.addKernel(prefix + "_split", args,
                                                 int(kDecodeSplitThreads)));
  buildLseMerge(b, gm.addKernel(prefix + "_merge", args, int(kDecodeMergeThreads)),
                spec, 0);
  return gm.kernel(prefix, int(kDecodeMergeThreads), 1, decodeSharedBytes(spec), "decode-v1");
}

} // namespace deltaflow::compiler
