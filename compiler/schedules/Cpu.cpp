//===- Cpu.cpp - attention schedules shared by the CPU targets ------------===//
//
// x86-64 (schedules/x86.cpp) and arm64 (schedules/arm64.cpp) use these
// schedules with their own tile and register-tile sizes (CpuTiles).
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

#include "deltaflow/Compiler/Schedule.h"


namespace deltaflow::compiler {

void schedulePrefillCpu(PrefillPipeline &P, const AttentionSpec &spec,
                        const Halide::Target &t, const CpuRegisterTiles &rt) {
  using Halide::TailStrategy;
  const int G = int(spec.hq / spec.hkv);
  const int Tq = P.tiles.queryTile;
  const int vq = vectorWidthFor(t, Tq);       // lanes over query rows
  const int ve = vectorWidthFor(t, spec.dv);  // lanes over value dim
  const int keysPerTile = rt.keysPerTile;
  Halide::Var tile("tile"), jo("jo"), ji("ji"), eo("eo"), ei("ei"), qo("qo"),
      qin("qin");

  // One task per (query tile, KV head, batch).
  P.state.compute_root()
      .bound(P.e, 0, int(spec.dv))
      .bound(P.qi, 0, Tq)
      .bound(P.g, 0, G)
      .vectorize(P.e, ve);
  P.state.update()
      .reorder(P.e, P.qi, P.g, P.rb, P.qt, P.hk, P.b)
      .fuse(P.qt, P.hk, tile)
      .fuse(tile, P.b, tile)
      .parallel(tile)
      .vectorize(P.e, ve);
  Halide::LoopLevel perTile(P.state, tile), perBlock(P.state, Halide::RVar(P.rb));

  P.qT.compute_at(perTile).vectorize(P.qi, vq);
  if (P.form.kind == PrefillForm::Sparse) {
    P.kidx.compute_at(perBlock);
  }

  // Scores of one block: an unrolled register tile (Tq x G x keysPerTile).
  P.s.compute_at(perBlock)
      .split(P.jj, jo, ji, keysPerTile)
      .reorder(P.qi, P.g, ji, jo)
      .vectorize(P.qi, vq)
      .unroll(P.g)
      .unroll(ji);
  P.sdot.compute_at(P.s, jo).vectorize(P.qi, vq).unroll(P.g).unroll(P.jj);
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

  // P.V of one block through a register tile: 2 value vectors x 4 rows x
  // 2 heads accumulate over the block's keys.
  const int eTile = std::min<int>(int(spec.dv), 2 * ve);
  const int qTile = std::min(4, Tq);
  const int gTile = G % 2 == 0 ? 2 : 1;
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
  P.bpv.update()
      .reorder(P.e, P.qi, P.g, P.rj)
      .vectorize(P.e, ve)
      .unroll(P.e)
      .unroll(P.qi)
      .unroll(P.g);

  P.out.vectorize(P.e, ve).parallel(P.h);
  P.out.output_buffer().dim(0).set_bounds(0, int(spec.dv));
  if (P.lse.defined()) {
    P.lse.parallel(P.h);
  }
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
