//===- Cpu.cpp - attention schedules shared by the CPU targets ------------===//
//
// x86-64 (schedules/x86.cpp) and arm64 (schedules/arm64.cpp) use these
// schedules with their own tile and register-tile sizes (CpuTileDefaults,
// through cpuTargetFamily below).
//
// Prefill: one parallel task per (query tile, KV head, batch); inside it the
// key blocks are merged online. Register tiles: scores are vectorised over
// the Tq query rows (one AVX-512 vector) and unrolled over the G heads of the
// group and 4 keys; P.V is vectorised over the value dim.
// Decode: one parallel task per (key chunk, KV head, batch); the q.k dot is
// vectorised over the head dim (rfactor) and P.V over the value dim.
// Timings: see bench/ (deltaflow-bench dense), which sweeps these tiles.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Compiler/GraphPipeline.h"
#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "deltaflow/Compiler/Targets.h"

#include <string>

namespace deltaflow::compiler {

namespace {
std::vector<TileParam> cpuTileParams(bool arm64) {
  // Defaults: x86.cpp (AVX-512 / AVX2) and arm64.cpp (NEON).
  auto d = [&](const char *x86, const char *arm) {
    return std::string(" (default ") + (arm64 ? arm : x86) + ")";
  };
  return {
      {"prefill.query-tile", "query rows per prefill tile" + d("16 with AVX-512, 8 with AVX2", "8"), 1, 256},
      {"prefill.key-block", "keys per prefill block" + d("256", "256"), 1, 16384},
      {"prefill.keys-per-tile", "keys per score register tile" + d("4 with AVX-512, 2 with AVX2", "2"), 1, 16},
      {"pv.vectors", "value-dim vectors per P.V register tile" + d("2", "2"), 1, 16},
      {"pv.rows", "query rows per P.V register tile" + d("4 with AVX-512, 2 with AVX2", "4"), 1, 64},
      {"pv.heads", "heads per P.V register tile" + d("2", "2"), 1, 16},
      {"decode.key-chunk", "keys per split-K decode chunk" + d("1024", "1024"), 1, 1 << 20},
      {"matmul.tile-rows", "output rows per graph matmul register tile" + d("8 with AVX-512, 6 with AVX2", "6"), 1, 64},
  };
}
} // namespace

// --- The selection kernels' shared stages on CPUs ---------------------------
namespace {
using Halide::Func;
using Halide::Var;

void scheduleCandidateScoresCpu(CandidateScores &cs, const SelectionBuild &sb) {
  const int G = sb.groupSize();
  const int vd = vectorWidthFor(sb.target, sb.spec.d);
  Var tile("tile"), u("u");
  cs.qbar.compute_root().parallel(cs.qbar.args()[1]);
  // One task per (block of keys, KV head, chunk); each K row is loaded once
  // for the G heads of its group.
  cs.scores.compute_root()
      .bound(cs.g, 0, G)
      .split(cs.j, cs.jb, cs.ji, cs.block, Halide::TailStrategy::GuardWithIf)
      .reorder(cs.g, cs.ji, cs.jb, cs.hk, cs.c, cs.b)
      .fuse(cs.jb, cs.hk, tile)
      .parallel(tile)
      .unroll(cs.g);
  // The block's dots at once (as the decode q.k, schedules/Cpu.cpp): per
  // key, vd lanes of partial dots for the G heads, then one sum per head.
  cs.dot.compute_at(cs.scores, tile).reorder(cs.g, cs.j).unroll(cs.g);
  Halide::RVar rdo("rdo"), rdi("rdi");
  Halide::RVar rd(cs.rd.x);
  cs.dot.update().reorder(cs.g, rd, cs.j);
  Func lanes = cs.dot.update().split(rd, rdo, rdi, vd).rfactor(rdi, u);
  lanes.compute_at(cs.dot, cs.j)
      .reorder_storage(u, cs.g, cs.j)
      .vectorize(u)
      .unroll(cs.g);
  lanes.update().reorder(u, cs.g, rdo).vectorize(u).unroll(cs.g);
  cs.dot.update().atomic().vectorize(rdi).unroll(cs.g);
}

void scheduleHeadSoftmaxCpu(HeadSoftmax &hs, CandidateScores &cs,
                            const SelectionBuild &) {
  Var gh("gh");
  for (Func *f : {&hs.max, &hs.sum}) {
    f->compute_root().fuse(cs.g, cs.hk, gh).parallel(gh);
    for (int u = 0; u < f->num_update_definitions(); ++u)
      f->update(u).fuse(cs.g, cs.hk, gh).parallel(gh);
  }
  if (hs.keptScore.defined()) {
    hs.keptScore.compute_root().parallel(cs.hk);
    hs.keptScore.update().parallel(cs.hk);
    hs.keptSum.compute_root().fuse(cs.g, cs.hk, gh).parallel(gh);
    hs.keptSum.update().fuse(cs.g, cs.hk, gh).parallel(gh);
    hs.keptShare.compute_root();
  }
}

void scheduleOverCandidatesCpu(Func f, const Var &j,
                               const std::vector<Halide::RVar> &rvars,
                               const Halide::Target &t) {
  Var jo("jo"), ji("ji");
  const int vj = t.natural_vector_size<float>();
  f.compute_root()
      .split(j, jo, ji, 1024, Halide::TailStrategy::GuardWithIf)
      .parallel(jo)
      .vectorize(ji, vj);
  std::vector<Halide::VarOrRVar> order = {ji};
  order.insert(order.end(), rvars.begin(), rvars.end());
  order.push_back(jo);
  f.update()
      .split(j, jo, ji, 1024, Halide::TailStrategy::GuardWithIf)
      .reorder(order)
      .parallel(jo)
      .vectorize(ji, vj);
}
} // namespace

TargetFamily cpuTargetFamily(const CpuTileDefaults &defaults) {
  TargetFamily f;
  f.tiles = cpuTileParams(defaults.arm64);
  f.prefillTiles = [defaults](const Halide::Target &t, const AttentionSpec &) {
    PrefillTiles tiles;
    tiles.queryTile = tile(t, "prefill.query-tile", defaults.queryTile(t));
    tiles.keyBlock = tile(t, "prefill.key-block", 256);
    tiles.bitWidenF16 = true;
    tiles.splitNonFiniteV = true;
    return tiles;
  };
  f.decodeTiles = [](const Halide::Target &t, const AttentionSpec &) {
    DecodeTiles tiles;
    tiles.keyChunk = tile(t, "decode.key-chunk", 1024);
    tiles.bitWidenF16 = true;
    return tiles;
  };
  auto registers = [defaults](const Halide::Target &t) {
    CpuRegisterTiles rt;
    rt.keysPerTile = tile(t, "prefill.keys-per-tile", defaults.keysPerTile(t));
    rt.pvVectors = tile(t, "pv.vectors", 2);
    rt.pvRows = tile(t, "pv.rows", defaults.pvRows(t));
    rt.pvHeads = tile(t, "pv.heads", 2);
    return rt;
  };
  f.schedulePrefill = [registers](PrefillPipeline &p, const AttentionSpec &spec,
                                  const Halide::Target &t) {
    schedulePrefillCpu(p, spec, t, registers(t));
  };
  f.scheduleDecode = [registers](DecodePipeline &p, const AttentionSpec &spec,
                                 const Halide::Target &t) {
    scheduleDecodeCpu(p, spec, t, registers(t));
  };
  f.scheduleDelta = scheduleDeltaCorrectCpu;
  f.selection = {scheduleCandidateScoresCpu, scheduleHeadSoftmaxCpu,
                 scheduleOverCandidatesCpu};
  f.matmulTiles = [defaults](const Halide::Target &t) {
    MatmulTiles m;
    const int vw = t.natural_vector_size<float>();
    m.tileW = defaults.matmulTileWVectors * vw;
    m.tileH = tile(t, "matmul.tile-rows", defaults.matmulTileRows(t));
    m.rowBlock = defaults.matmulRowBlock(t);
    m.smallW = defaults.matmulSmallWVectors * vw;
    return m;
  };
  return f;
}

void schedulePrefillCpu(PrefillPipeline &P, const AttentionSpec &spec,
                        const Halide::Target &t, const CpuRegisterTiles &rt) {
  using Halide::TailStrategy;
  const int G = int(spec.hq / spec.hkv);
  const int Tq = P.tiles.queryTile;
  const int vq = vectorWidthFor(t, Tq);       // lanes over query rows
  const int ve = vectorWidthFor(t, spec.dv);  // lanes over value dim
  const int keysPerTile = rt.keysPerTile;
  if (keysPerTile > P.tiles.keyBlock)
    throw std::runtime_error(
        "--tile prefill.keys-per-tile=" + std::to_string(keysPerTile) +
        ": a register tile of that many keys exceeds the key block of " +
        std::to_string(P.tiles.keyBlock) + " (prefill.key-block)");
  Halide::Var tile("tile"), jo("jo"), ji("ji"), eo("eo"), ei("ei"), qo("qo"),
      qin("qin");

  // One task per query tile, KV head after KV head. Without an LSE output the
  // task also writes its rows of `out`, so the online state lives in the
  // task: a root state would be a [Dv, Nq, Hq] x 3 buffer (805 MB at 16K
  // for Llama-3-8B heads) touched once per row, whose page faults and
  // cache misses made the whole causal prefill collapse at long context.
  Halide::Var io("io"), ii("ii"), ho("ho"), hi("hi");
  const bool fusedOut = !P.lse.defined();
  if (fusedOut) {
    P.out.output_buffer().dim(2).set_bounds(0, int(spec.hq));
    P.out.split(P.i, io, ii, Tq, TailStrategy::GuardWithIf)
        .split(P.h, ho, hi, G)
        .reorder(P.e, ii, hi, io, ho, P.b)
        // Both threads work on one KV head at a time: they share its K/V
        // in L3 instead of streaming two heads' (at 16K, 2 x 16 MB of a
        // 32 MB L3). 4K: 1567 -> 1227 ms; 16K: 28.0 -> 24.4 s (AVX2 EPYC).
        .parallel(io)
        .vectorize(P.e, ve);
    P.state.compute_at(P.out, io);
  } else {
    P.state.compute_root();
  }
  P.state.bound(P.e, 0, int(spec.dv))
      .bound(P.qi, 0, Tq)
      .bound(P.g, 0, G)
      .vectorize(P.e, ve);
  P.state.update().reorder(P.e, P.qi, P.g, P.rb, P.qt, P.hk, P.b).vectorize(P.e, ve);
  if (!fusedOut)
    P.state.update().fuse(P.qt, P.hk, tile).fuse(tile, P.b, tile).parallel(tile);
  Halide::LoopLevel perTile = fusedOut ? Halide::LoopLevel(P.out, io)
                                       : Halide::LoopLevel(P.state, tile),
                    perBlock(P.state, Halide::RVar(P.rb));

  P.qT.compute_at(perTile).vectorize(P.qi, vq);
  if (P.form.kind == PrefillForm::Sparse) {
    P.kidx.compute_at(perBlock);
  }

  // Scores of one block: an unrolled register tile of one vector of rows x
  // G heads x keysPerTile keys, whatever Tq is (Tq sets how many rows share
  // each K/V block read; the register file bounds the tile).
  Halide::Var qs("qs"), qv("qv");
  P.s.compute_at(perBlock)
      .split(P.jj, jo, ji, keysPerTile)
      .split(P.qi, qs, qv, vq)
      .reorder(qv, P.g, ji, qs, jo)
      .vectorize(qv)
      .unroll(P.g)
      .unroll(ji);
  P.sdot.compute_at(P.s, qs).vectorize(P.qi, vq).unroll(P.g).unroll(P.jj);
  P.sdot.update()
      .reorder(P.qi, P.g, P.jj, P.rd)
      .vectorize(P.qi, vq)
      .unroll(P.g)
      .unroll(P.jj);

  P.bmax.compute_at(perBlock).vectorize(P.qi, vq);
  P.bmax.update().reorder(P.qi, P.g, P.rj).vectorize(P.qi, vq).unroll(P.g);
  P.p.compute_at(perBlock).vectorize(P.qi, vq).unroll(P.g);
  P.bsum.compute_at(perBlock).vectorize(P.qi, vq);
  P.bsum.update().reorder(P.qi, P.g, P.rj).vectorize(P.qi, vq).unroll(P.g);

  // P.V of one block through a register tile (CpuRegisterTiles: value
  // vectors x rows x heads) accumulated over the block's keys.
  const int eTile = std::min<int>(int(spec.dv), rt.pvVectors * ve);
  if (spec.dv % eTile != 0)
    throw std::runtime_error(
        "--tile pv.vectors=" + std::to_string(rt.pvVectors) + ": a P.V tile of " +
        std::to_string(eTile) + " value lanes does not divide the value dim " +
        std::to_string(spec.dv));
  const int qTile = std::min(rt.pvRows, Tq);
  const int gTile = G % rt.pvHeads == 0 ? rt.pvHeads : 1;
  Halide::Var go("go"), gi("gi");
  Halide::Func bpvTile = P.bpv.in(P.state);
  bpvTile.compute_at(perBlock)
      .split(P.e, eo, ei, eTile)
      .split(P.qi, qo, qin, qTile)
      .split(P.g, go, gi, gTile)
      .reorder(ei, qin, gi, eo, qo, go)
      .vectorize(ei, ve)
      .unroll(ei)
      .unroll(qin)
      .unroll(gi);
  P.bpv.compute_at(bpvTile, eo)
      .vectorize(P.e, ve)
      .unroll(P.e)
      .unroll(P.qi)
      .unroll(P.g);
  // Update 0 sums blocks whose V is all finite, update 1 the others.
  for (int u = 0; u < 2; ++u)
    P.bpv.update(u)
        .reorder(P.e, P.qi, P.g, u == 0 ? P.rjFinite.x : P.rjNonFinite.x)
        .vectorize(P.e, ve)
        .unroll(P.e)
        .unroll(P.qi)
        .unroll(P.g);
  // Whether a block's V holds inf or NaN: exponent fields, max over keys
  // (vectors over the value dim), then over the value dim.
  P.vexp.compute_at(perBlock).vectorize(P.e, ve);
  P.vexp.update().reorder(P.e, P.rj).vectorize(P.e, ve);
  P.vbad.compute_at(perBlock);

  if (!fusedOut) {
    P.out.vectorize(P.e, ve).parallel(P.h);
    P.lse.parallel(P.h);
  }
  P.out.output_buffer().dim(0).set_bounds(0, int(spec.dv));
}

void scheduleDecodeCpu(DecodePipeline &P, const AttentionSpec &spec,
                       const Halide::Target &t, const CpuRegisterTiles &) {
  const int G = int(spec.hq / spec.hkv);
  const int vd = vectorWidthFor(t, spec.d);
  const int ve = vectorWidthFor(t, spec.dv);
  Halide::Var tile("tile"), eo("eo"), ei("ei");

  // One task per (key chunk, KV head, batch) produces that chunk's partials.
  P.part.compute_root()
      .bound(P.e, 0, int(spec.dv))
      .bound(P.g, 0, G)
      .reorder(P.e, P.g, P.i, P.c, P.hk, P.b)
      .fuse(P.c, P.hk, tile)
      .fuse(tile, P.b, tile)
      .parallel(tile)
      .vectorize(P.e, ve);
  P.qd.compute_at(P.part, tile).vectorize(P.d, vd);
  if (P.sparse) // the chunk's slot -> key map, once per task
    P.kidx.compute_at(P.part, tile);

  // q.k, vectorised over the head dim with a horizontal sum at the end.
  P.s.compute_at(P.part, tile).vectorize(P.jj, vd);
  P.sdot.compute_at(P.part, tile).reorder(P.g, P.jj, P.i);
  P.sdot.update().reorder(P.g, P.rd, P.jj, P.i);
  Halide::RVar rdo("rdo"), rdi("rdi");
  Halide::Var u("u");
  Halide::Func dotLanes =
      P.sdot.update().split(P.rd, rdo, rdi, vd).rfactor(rdi, u);
  dotLanes.compute_at(P.sdot, P.jj)
      .reorder_storage(u, P.jj, P.g, P.i, P.c, P.hk, P.b)
      .vectorize(u)
      .unroll(P.g);
  P.sdot.update().atomic().vectorize(rdi).unroll(P.g);
  dotLanes.update().reorder(u, P.g, rdo).vectorize(u).unroll(P.g);

  P.cmax.compute_at(P.part, tile);
  P.p.compute_at(P.part, tile).vectorize(P.jj, vd);
  P.csum.compute_at(P.part, tile);

  // P.V: 4 value vectors x G heads accumulate over the chunk's keys.
  Halide::Func cpvTile = P.cpv.in(P.part);
  const int eTile = std::min<int>(int(spec.dv), 4 * ve);
  cpvTile.compute_at(P.part, tile)
      .split(P.e, eo, ei, eTile)
      .reorder(ei, P.g, eo, P.i)
      .vectorize(ei, ve)
      .unroll(ei)
      .unroll(P.g);
  P.cpv.compute_at(cpvTile, eo).vectorize(P.e, ve).unroll(P.e).unroll(P.g);
  P.cpv.update()
      .reorder(P.e, P.g, P.rj, P.i)
      .vectorize(P.e, ve)
      .unroll(P.e)
      .unroll(P.g);

  P.gmax.compute_root();
  P.merged.compute_root().vectorize(P.e, ve).parallel(P.hk);
  P.merged.update().vectorize(P.e, ve).parallel(P.hk);
  P.out.vectorize(P.e, ve).parallel(P.h);
  P.out.output_buffer().dim(0).set_bounds(0, int(spec.dv));
  if (P.lse.defined())
    P.lse.parallel(P.h);
}

} // namespace deltaflow::compiler
