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
#include <map>
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

/// Sparse attention over sinks, a selection and the local window
/// (attn.sparse_attention): `base` holds heads, dims, scale and offset, and
/// is always causal.
struct SparseSpec {
  int64_t sinks = 0, window = 0, chunk = 1;
  int64_t slots = 0;    ///< index slots per chunk; 0: no selection input
  int64_t selHeads = 1; ///< 1 (shared) or Hkv
};

/// A selection (attn.select) under a named policy.
struct SelectSpec {
  std::string policy;
  std::map<std::string, double> params;
  int64_t hq = 0, hkv = 0, d = 0;
  int64_t sinks = 0, window = 0, chunk = 1, slots = 0;
  bool perKvHead = false;
  std::optional<int64_t> offset;
};

/// A dimension is static, or `ceil(dim / div) + add` of a dimension of an
/// entry input.
struct DimDesc {
  int64_t size = -1;      ///< -1: dynamic
  std::string fromInput;  ///< entry input providing a dynamic size
  int fromDim = -1;
  int64_t div = 1, add = 0;
};

struct TensorDesc {
  std::string name;
  std::string dtype = "float32";
  std::vector<DimDesc> shape;
};

struct KernelDesc {
  std::string name;   ///< unique in the module; symbols derive from it
  /// attention | select | sparse_attention | dense_rows | delta_correct
  std::string kind;
  std::string loc;    ///< source location of the op, for messages
  AttentionSpec attention; ///< attention, sparse_attention, dense_rows, delta_correct
  SparseSpec sparse;       ///< sparse_attention
  SelectSpec select;       ///< select
  int64_t stride = 0;      ///< dense_rows, delta_correct
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
