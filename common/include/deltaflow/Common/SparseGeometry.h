//===- SparseGeometry.h - the sparse pattern and Δ rows, once ---*- C++ -*-===//
//
// Every formula for which keys a sparse query sees and which rows Δ
// computes densely, written once for integers (the dialect, the pass, the
// runtime, the tests) and for Halide expressions (the kernels). Plain C++:
// a Halide build specialises `Arith<Halide::Expr>` (compiler/include/
// deltaflow/Compiler/HalideCommon.h). examples/attention_check.py reads
// kDeltaTailMinRows from this file.
//
// Sources: docs/design.md, "The methods it implements": Δ-correction (the
// tail rule) and TokenSelect (sinks ∪ selection ∪ window, anchored at the
// chunk start); FlashAttention's window_size=(W, 0) for the sliding window.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMMON_SPARSEGEOMETRY_H
#define DELTAFLOW_COMMON_SPARSEGEOMETRY_H

#include "deltaflow/Common/Manifest.h"

#include <algorithm>
#include <cstdint>

namespace deltaflow::geometry {

/// Δ computes at least this many of the prompt's last rows densely (the
/// tail is the last `nq mod stride + max(kDeltaTailMinRows, stride)` rows).
inline constexpr int64_t kDeltaTailMinRows = 128;

/// The arithmetic a formula needs, for integers; Halide expressions get a
/// specialisation in the compiler.
template <typename T> struct Arith;
template <> struct Arith<int64_t> {
  static int64_t constant(int64_t c) { return c; }
  static int64_t min(int64_t a, int64_t b) { return std::min(a, b); }
  static int64_t max(int64_t a, int64_t b) { return std::max(a, b); }
  static int64_t clamp(int64_t x, int64_t lo, int64_t hi) {
    return std::min(std::max(x, lo), hi);
  }
};

// --- Δ rows ------------------------------------------------------------------

/// Rows of the Δ tail: max(kDeltaTailMinRows, stride).
inline int64_t deltaTailSpan(int64_t stride) {
  return std::max(kDeltaTailMinRows, stride);
}
/// Rows that attn.dense_rows allocates beyond the ceil(Nq / stride) strided
/// rows: the largest tail, nq mod stride + max(128, stride) <= stride - 1 +
/// max(128, stride).
inline int64_t deltaExtraRows(int64_t stride) {
  return stride - 1 + deltaTailSpan(stride);
}
/// Strided rows 0, s, 2s, ... of `nq` query rows: ceil(nq / s).
template <typename T> T deltaStridedRows(const T &nq, int64_t stride) {
  return (nq + Arith<T>::constant(stride - 1)) / Arith<T>::constant(stride);
}
/// Tail rows this call computes: the prompt's last nq mod s + max(128, s)
/// rows, less the `rowsAfter` rows that later calls hold, within [0, nq].
/// The call that ends the prompt (rowsAfter = 0) has min(nq, nq mod s +
/// max(128, s)); a call far from the end has none.
template <typename T>
T deltaTailRows(const T &nq, int64_t stride, const T &rowsAfter) {
  using A = Arith<T>;
  T zero = A::constant(0);
  return A::clamp(nq % A::constant(stride) + A::constant(deltaTailSpan(stride)) -
                      A::max(rowsAfter, zero),
                  zero, nq);
}

// --- The sparse pattern --------------------------------------------------------

/// Position of the first query: `offset`, or Nk - Nq (queries are the last
/// rows of the context).
template <typename T>
T firstQueryPosition(const T &nq, const T &nk, const std::optional<int64_t> &offset) {
  return offset ? Arith<T>::constant(*offset) : nk - nq;
}
/// Chunks of `nq` query rows: ceil(nq / chunk).
template <typename T> T chunkCount(const T &nq, int64_t chunk) {
  return (nq + Arith<T>::constant(chunk - 1)) / Arith<T>::constant(chunk);
}
/// Position of the first query of chunk `c`; the selecting policies anchor
/// their window there.
template <typename T> T chunkStart(const T &first, const T &c, int64_t chunk) {
  return first + c * Arith<T>::constant(chunk);
}
/// Selection candidates of a chunk starting at `s0`: keys [sinks, sinks +
/// candidateCount), the keys before the window and past the sinks.
template <typename T>
T candidateCount(const T &s0, const T &nk, int64_t sinks, int64_t window) {
  using A = Arith<T>;
  return A::max(A::min(s0 - A::constant(window), nk) - A::constant(sinks),
                A::constant(0));
}
/// First key of the local window of a query (or chunk) at `s0`: the window
/// covers [max(sinks, s0 - window), s0 ...], after the sinks.
template <typename T> T windowBegin(const T &s0, int64_t sinks, int64_t window) {
  return Arith<T>::max(Arith<T>::constant(sinks), s0 - Arith<T>::constant(window));
}
/// Keys that a sparse pattern covers besides the query's own chunk: sinks +
/// selection slots + window. A context of at most this many keys is dense.
inline int64_t patternKeys(const manifest::SparsePattern &p) {
  return p.sinks + p.slots + p.window;
}
/// Key slots of one decode row: the pattern and the row itself.
inline int64_t decodeSlots(const manifest::SparsePattern &p) {
  return patternKeys(p) + 1;
}

} // namespace deltaflow::geometry

#endif // DELTAFLOW_COMMON_SPARSEGEOMETRY_H
