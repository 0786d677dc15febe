//===- AttentionPipeline.h - Halide algorithm for attention -----*- C++ -*-===//
//
// Halide side of the compiler: includes Halide.h, never MLIR. The algorithm
// (AttentionPipeline.cpp) and the schedules (schedules/<target>.cpp) meet
// here: the algorithm exposes every Func a schedule may touch.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_ATTENTIONPIPELINE_H
#define DELTAFLOW_COMPILER_ATTENTIONPIPELINE_H

#include "deltaflow/Compiler/HalideCommon.h"
#include "deltaflow/Compiler/KernelSpec.h"

#include "Halide.h"

#include <optional>

namespace deltaflow::compiler {

/// Tile shape the schedule picks; the algorithm is written over these tiles so
/// that causal key-block skipping is expressible (the key-block RDom is
/// bounded by the query tile).
struct PrefillTiles {
  int queryTile = 16; ///< Tq: query rows per tile (and per vector)
  int keyBlock = 256; ///< Bk: keys per online-softmax block
  /// Strided dense rows: skip tiles past the tail (CPU schedules).
  bool skipUnusedRowTiles = true;
  /// Widen f16 K/V with integer ops (CPU targets; Float16.h).
  bool bitWidenF16 = false;
  /// P.V in two forms per key block: a plain sum where every V value of the
  /// block is finite, and one that drops the keys a row does not see where
  /// some is not (vbad). Without it (GPU schedules) every block takes the
  /// second form, whose select costs CPUs about 20% of the prefill.
  bool splitNonFiniteV = false;
};

struct DecodeTiles {
  int keyChunk = 1024; ///< keys per split-K chunk
  int dotBlock = 32;   ///< GPU: keys whose q.k lane partials share memory at once
  bool bitWidenF16 = false; ///< widen f16 K/V with integer ops (CPU; Float16.h)
};

/// What every attention pipeline form has: the q/k/v inputs ([D, N, H, B]
/// innermost first; q float32, k/v float32 or float16 per
/// AttentionSpec::kvDtype, set by the build functions) and the `out` (+
/// optional `lse`) outputs.
struct AttentionIO {
  Halide::ImageParam q{Halide::Float(32), 4, "q"};
  Halide::ImageParam k{Halide::Float(32), 4, "k"};
  Halide::ImageParam v{Halide::Float(32), 4, "v"};
  Halide::Func out{"out"}; ///< (e, i, h, b)
  Halide::Func lse{"lse"}; ///< (i, h, b), defined only when requested
  std::vector<Halide::Func> outputs() const;
  virtual ~AttentionIO() = default;
  virtual std::vector<Halide::Argument> arguments() const { return {q, k, v}; }
  /// Position of query row `row`: the offset, or Nk - Nq by default.
  Halide::Expr queryPosition(const AttentionSpec &spec,
                             const Halide::Expr &row) const;
  /// Whether query `row` may see `key`: key < Nk and, if causal, key <=
  /// its position.
  Halide::Expr keyVisible(const AttentionSpec &spec, const Halide::Expr &key,
                          const Halide::Expr &row) const;
};

/// Which rows and keys a prefill-form pipeline covers.
struct PrefillForm {
  enum Kind {
    Dense,      ///< every row, every key (attn.attention)
    /// every row; sinks + selected + local window (attn.sparse_attention).
    /// With a selection the local window is anchored at the chunk start;
    /// without one (window + sinks) it slides per query: `p - j <= window`.
    Sparse,
    /// rows 0, s, 2s, ... then, in a prompt's final call, the tail; every
    /// key (attn.dense_rows)
    StridedRows
  } kind = Dense;
  SparseSpec sparse; ///< Sparse
  int64_t stride = 0; ///< StridedRows
};

/// Prefill: online softmax over key blocks, per (query tile, KV head, batch).
/// The same algorithm serves sparse attention (key blocks run over a list of
/// key slots) and the strided dense rows of the Delta correction (query rows
/// run through a row map).
struct PrefillPipeline : AttentionIO {
  PrefillTiles tiles;
  PrefillForm form;
  /// attn.sparse_attention's indices [B, Hs, C, slots] as (t, c, hs, b).
  Halide::ImageParam indices{Halide::Int(32), 4, "indices"};
  /// StridedRows: how many prompt rows follow this call (0: the call ends
  /// the prompt). The dense tail is the prompt's last rows, so a call far
  /// from the end has none (docs/design.md, "Δ-correction"). Passed after the
  /// inputs.
  Halide::Param<int32_t> promptRowsAfter{"prompt_rows_after", 0};
  Halide::Func kidx{"kidx"}; ///< (jj, kb, qt, hk, b) key of a slot (Sparse)
  std::vector<Halide::Argument> arguments() const override;
  Halide::Var d{"d"}, e{"e"}, qi{"qi"}, qt{"qt"}, g{"g"}, hk{"hk"}, b{"b"},
      jj{"jj"}, kb{"kb"}, i{"i"}, h{"h"};
  Halide::RDom rd, rj, rb;
  /// The keys of a block for P.V: over blocks whose V is all finite (only
  /// with tiles.splitNonFiniteV), and over the others (every block without
  /// it).
  Halide::RDom rjFinite, rjNonFinite;
  Halide::Func qT{"qT"};     ///< (qi, d, g, qt, hk, b) pre-scaled queries
  Halide::Func kt{"kt"};     ///< (d, jj, kb, qt, hk, b) keys of a block (as f32)
  Halide::Func sdot{"sdot"}; ///< (qi, g, jj, kb, qt, hk, b) q.k
  Halide::Func s{"s"};       ///< (qi, g, jj, kb, qt, hk, b) scores + mask
  Halide::Func bmax{"bmax"}; ///< (qi, g, kb, qt, hk, b) block row max
  Halide::Func p{"p"};       ///< (qi, g, jj, kb, qt, hk, b) exp(s - bmax)
  Halide::Func bsum{"bsum"}; ///< (qi, g, kb, qt, hk, b)
  /// With tiles.splitNonFiniteV: (e, kb, qt, hk, b) the largest exponent
  /// field (bits & 0x7f800000) of V's column e over the block's keys, and
  /// (kb, qt, hk, b) whether some V value of the block is inf or NaN.
  Halide::Func vexp{"vexp"}, vbad{"vbad"};
  Halide::Func bpv{"bpv"};   ///< (e, qi, g, kb, qt, hk, b) block P.V
  Halide::Func state{"state"}; ///< (e, qi, g, qt, hk, b) -> {acc, m, l}
};

/// Delta correction (attn.delta_correct): elementwise over the sparse output.
struct DeltaPipeline {
  Halide::ImageParam sparse{Halide::Float(32), 4, "sparse"};
  Halide::ImageParam rows{Halide::Float(32), 4, "rows"};
  /// As PrefillPipeline::promptRowsAfter.
  Halide::Param<int32_t> promptRowsAfter{"prompt_rows_after", 0};
  Halide::Var e{"e"}, i{"i"}, h{"h"}, b{"b"};
  Halide::Func out{"out"}; ///< (e, i, h, b)
};

/// Decode: split-K over key chunks, partials merged by log-sum-exp. The
/// sparse form (one query row; attn.sparse_attention in decode) splits the
/// slots sinks + selection + window instead of the keys.
struct DecodePipeline : AttentionIO {
  DecodeTiles tiles;
  std::optional<SparseSpec> sparse;
  /// Sparse: the indices [B, Hs, C, slots] as (t, c, hs, b).
  Halide::ImageParam indices{Halide::Int(32), 4, "indices"};
  Halide::Func kidx{"kidx"}; ///< (jj, i, c, hk, b) key of a slot (sparse)
  std::vector<Halide::Argument> arguments() const override;
  Halide::Var d{"d"}, e{"e"}, g{"g"}, i{"i"}, c{"c"}, hk{"hk"}, b{"b"},
      jj{"jj"}, h{"h"}, u{"u"};
  Halide::RDom rd, rj, rc;
  Halide::Func qd{"qd"};     ///< (d, g, i, hk, b) pre-scaled queries
  Halide::Func sdot{"sdot"}; ///< (jj, g, i, c, hk, b) q.k
  Halide::Func s{"s"};       ///< (jj, g, i, c, hk, b) scores + mask
  Halide::Func cmax{"cmax"}; ///< (g, i, c, hk, b)
  Halide::Func p{"p"};       ///< (jj, g, i, c, hk, b)
  Halide::Func csum{"csum"}; ///< (g, i, c, hk, b)
  Halide::Func cpv{"cpv"};   ///< (e, g, i, c, hk, b)
  Halide::Func part{"part"}; ///< (e, g, i, c, hk, b) -> {cpv, cmax, csum}
  Halide::Func gmax{"gmax"}; ///< (g, i, hk, b)
  Halide::Func merged{"merged"}; ///< (e, g, i, hk, b) -> {acc, l}
  Halide::Func outG{"outG"};     ///< (e, g, i, hk, b) normalised output
  Halide::Func lseG{"lseG"};     ///< (g, i, hk, b), defined with lse
};

/// Run-time checks on the inputs that Halide's bounds checks do not cover.
void addAttentionRequirements(Halide::Pipeline &pipeline,
                              const AttentionSpec &spec, const AttentionIO &io);

/// THE ALGORITHM. Builds the prefill or decode form of one attention op.
PrefillPipeline buildPrefillAttention(const AttentionSpec &spec,
                                      const PrefillTiles &tiles,
                                      const PrefillForm &form = {});
DeltaPipeline buildDeltaCorrect(int64_t stride);
/// With `sparse`: one query row over the slots of attn.sparse_attention.
DecodePipeline buildDecodeAttention(const AttentionSpec &spec,
                                    const DecodeTiles &tiles,
                                    const SparseSpec *sparse = nullptr);

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_ATTENTIONPIPELINE_H
