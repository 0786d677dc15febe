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
  /// Element type of K and V as stored ("float32" or "float16"); queries,
  /// outputs and accumulation stay float32.
  std::string kvDtype = "float32";
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
  std::string kDtype = "float32"; ///< K as stored: "float32" or "float16"
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
  /// Entry inputs: weight | tokens | positions | last_row | kv_cache | input
  /// (from the argument's `deltaflow.role`); how a session feeds it.
  std::string role;
};

/// One op of a fused graph kernel (TOSA tensor math). Shapes are listed
/// outermost first, as in MLIR; -1 is dynamic (sized by the output buffer).
struct GraphNode {
  /// input | const | add | sub | mul | maximum | minimum | pow | exp | rsqrt |
  /// reciprocal | sigmoid | tanh | negate | sin | cos | clamp | cast |
  /// matmul | reduce_sum | reduce_max | reshape | transpose | slice | concat |
  /// gather
  std::string op;
  std::vector<int> operands;   ///< earlier node indices
  std::vector<int64_t> shape;  ///< result shape
  std::string dtype = "float32";
  std::vector<int64_t> ints;   ///< perms, slice start, axis, input index
  std::vector<double> values;  ///< const data (one value: splat), clamp bounds
};

/// A fused kernel: the last node is its result. Matmuls and reductions are
/// its anchor (at most one); elementwise and layout ops around it inline.
struct GraphSpec {
  std::vector<GraphNode> nodes;
  /// The ops it computes, in order ("gather mul reduce_sum ..."), for
  /// manifests and plans.
  std::string opsSummary() const {
    std::string s;
    for (const GraphNode &n : nodes)
      if (n.op != "input")
        s += (s.empty() ? "" : " ") + n.op;
    return s;
  }
};

struct KernelDesc {
  std::string name;   ///< unique in the module; symbols derive from it
  /// attention | select | sparse_attention | dense_rows | delta_correct |
  /// graph (fused TOSA ops) | cache_write (done by the runtime, in place)
  std::string kind;
  std::string loc;    ///< source location of the op, for messages
  AttentionSpec attention; ///< attention, sparse_attention, dense_rows, delta_correct
  SparseSpec sparse;       ///< sparse_attention
  SelectSpec select;       ///< select
  int64_t stride = 0;      ///< dense_rows, delta_correct
  GraphSpec graph;         ///< graph
  std::vector<std::string> inputs;  ///< buffer names (entry inputs or temps)
  std::vector<std::string> outputs; ///< buffer names (entry outputs or temps)
  std::vector<size_t> deps; ///< earlier kernels whose outputs it reads
};

struct EntryDesc {
  std::string name;
  std::vector<TensorDesc> inputs, outputs, temporaries;
  std::vector<KernelDesc> kernels; ///< in a valid execution order
  /// Every SSA value of the function as one buffer each (before fusion and
  /// planning): the baseline the buffer plan is measured against.
  std::vector<TensorDesc> valueBuffers;
};

struct ModuleDesc {
  std::string target; ///< deltaflow target name (host, x86-64-avx2, ...)
  std::vector<EntryDesc> entries;
};

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_KERNELSPEC_H
