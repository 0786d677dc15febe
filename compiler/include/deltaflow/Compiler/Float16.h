//===- Float16.h - widening stored f16 K/V to f32 in Halide -----*- C++ -*-===//
//
// Halide 14 supports Float(16) natively only on GPUs (and ARM with fp16);
// elsewhere it emulates every f16 -> f32 cast with compares and blends for
// subnormals, infinities and NaNs (about 15 vector instructions per vector,
// no F16C), which made f16 K/V decode slower than f32 on x86. CPU schedules
// widen with the magic-multiply form instead (Giesen, "Half to float done
// quick"): the 15 magnitude bits shifted into an f32's exponent/mantissa
// and scaled by 2^112, exact for normals, subnormals and zeros; infinities
// and NaNs patched by one compare; the sign or-ed in.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_FLOAT16_H
#define DELTAFLOW_COMPILER_FLOAT16_H

#include "Halide.h"

namespace deltaflow::compiler {

/// `x` as float32. `bitWiden`: for a Float(16) `x`, use the integer form
/// above (CPU targets); otherwise a plain cast (GPUs convert natively).
inline Halide::Expr widenToF32(const Halide::Expr &x, bool bitWiden) {
  if (!bitWiden || x.type() != Halide::Float(16))
    return Halide::cast<float>(x);
  auto u32 = [](uint32_t v) {
    return Halide::Internal::make_const(Halide::UInt(32), uint64_t(v));
  };
  Halide::Expr u = Halide::cast(Halide::UInt(32), Halide::reinterpret(Halide::UInt(16), x));
  Halide::Expr mag = (u & u32(0x7fff)) << u32(13);
  Halide::Expr scaled = Halide::reinterpret(Halide::Float(32), mag) *
                        Halide::Expr(5.192296858534828e33f); // 2^112
  Halide::Expr special = Halide::reinterpret(Halide::Float(32), mag | u32(0x7f800000));
  Halide::Expr f = Halide::select((u & u32(0x7c00)) == u32(0x7c00), special, scaled);
  return Halide::reinterpret(
      Halide::Float(32),
      Halide::reinterpret(Halide::UInt(32), f) | ((u & u32(0x8000)) << u32(16)));
}

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_FLOAT16_H
