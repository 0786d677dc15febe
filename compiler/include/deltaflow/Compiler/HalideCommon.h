//===- HalideCommon.h - common/'s contract in Halide terms ------*- C++ -*-===//
//
// The manifest's element types as Halide types, and the sparse geometry's
// formulas (deltaflow/Common/SparseGeometry.h) over Halide expressions, so
// the kernels compute the same rows and keys as the dialect, the runtime
// and the tests.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_HALIDECOMMON_H
#define DELTAFLOW_COMPILER_HALIDECOMMON_H

#include "deltaflow/Common/SparseGeometry.h"

#include "Halide.h"

namespace deltaflow {

namespace geometry {
/// Halide expressions: int32 arithmetic (constants narrowed to int32, as
/// Halide indexes buffers).
template <> struct Arith<Halide::Expr> {
  static Halide::Expr constant(int64_t c) { return Halide::Expr(int32_t(c)); }
  static Halide::Expr min(const Halide::Expr &a, const Halide::Expr &b) {
    return Halide::min(a, b);
  }
  static Halide::Expr max(const Halide::Expr &a, const Halide::Expr &b) {
    return Halide::max(a, b);
  }
  static Halide::Expr clamp(const Halide::Expr &x, const Halide::Expr &lo,
                            const Halide::Expr &hi) {
    return Halide::clamp(x, lo, hi);
  }
};
} // namespace geometry

namespace compiler {
/// A manifest element type as a Halide type.
inline Halide::Type halideType(manifest::DType t) {
  switch (t) {
  case manifest::DType::Float16:
    return Halide::Float(16);
  case manifest::DType::Int32:
    return Halide::Int(32);
  case manifest::DType::BFloat16:
    return Halide::BFloat(16);
  case manifest::DType::Float32:
    break;
  }
  return Halide::Float(32);
}
} // namespace compiler

} // namespace deltaflow

#endif // DELTAFLOW_COMPILER_HALIDECOMMON_H
