//===- KernelSpec.h - plain description of a compiled module ----*- C++ -*-===//
//
// The bridge between the MLIR half of the compiler (which partitions a
// function into kernels) and the Halide half (which builds, schedules and
// AOT-compiles them). Neither MLIR nor Halide headers appear here, so each
// half compiles with only its own toolchain.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_KERNELSPEC_H
#define DELTAFLOW_COMPILER_KERNELSPEC_H

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace deltaflow::compiler {

/// Static parameters of one attention kernel; sequence lengths and batch are
/// read from the buffers at run time.
struct AttentionSpec {
  int64_t hq = 0, hkv = 0, d = 0, dv = 0;
  double scale = 0;
  bool causal = false;
  std::optional<int64_t> offset; ///< nullopt: queries are the last Nq keys
  bool withLse = false;
};

/// A dimension is either static or copied from a dimension of an entry input.
struct DimDesc {
  int64_t size = -1;      ///< -1: dynamic
  std::string fromInput;  ///< entry input providing a dynamic size
  int fromDim = -1;
};

struct TensorDesc {
  std::string name;
  std::string dtype = "float32";
  std::vector<DimDesc> shape;
};

struct KernelDesc {
  std::string name;   ///< unique in the module; symbols derive from it
  std::string kind;   ///< "attention"
  std::string loc;    ///< source location of the op, for messages
  AttentionSpec attention;
  std::vector<std::string> inputs;  ///< buffer names (entry inputs or temps)
  std::vector<std::string> outputs; ///< buffer names (entry outputs or temps)
};

struct EntryDesc {
  std::string name;
  std::vector<TensorDesc> inputs, outputs, temporaries;
  std::vector<KernelDesc> kernels; ///< in a valid execution order
};

struct ModuleDesc {
  std::string target; ///< deltaflow target name (host, x86-64-avx2, ...)
  std::vector<EntryDesc> entries;
};

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_KERNELSPEC_H
