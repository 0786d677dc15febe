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

#include "deltaflow/Common/Manifest.h"
#include "deltaflow/Compiler/TensorCore.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace deltaflow::compiler {

// The manifest's types (deltaflow/Common/Manifest.h): what the compiler
// writes is what the runtime reads.
using manifest::Dim;
using manifest::DType;
using manifest::KernelKind;
using manifest::Role;
using manifest::TensorSpec;

/// Static parameters of one attention kernel; sequence lengths and batch are
/// read from the buffers at run time.
using AttentionSpec = manifest::AttentionParams;

/// Sparse attention over sinks, a selection and the local window
/// (attn.sparse_attention): the kernel's AttentionSpec holds heads, dims,
/// scale and offset, and is always causal.
struct SparseSpec : manifest::SparsePattern {
  int64_t selHeads = 1; ///< index head sets: 1 (shared) or Hkv
};

/// A selection (attn.select) under a named policy, with the head shape the
/// kernel is built for.
struct SelectSpec : manifest::SelectParams {
  int64_t hq = 0, hkv = 0, d = 0;
  /// The query's type: bf16/f16 only on a CUDA target (the device
  /// selection, compiler/TensorCore/TokenSelect.cpp).
  DType qDtype = DType::Float32;
};

/// One op of a fused graph kernel (TOSA tensor math). Shapes are listed
/// outermost first, as in MLIR; -1 is dynamic (sized by the output buffer).
struct GraphNode {
  /// input | const | an elementwise op of kElementwise (GraphPipeline.cpp:
  /// add, exp, clamp, cast, ...) | matmul | reduce_sum | reduce_max |
  /// reshape | transpose | slice | concat | gather
  std::string op;
  std::vector<int> operands;   ///< earlier node indices
  std::vector<int64_t> shape;  ///< result shape
  DType dtype = DType::Float32;
  std::vector<int64_t> ints;   ///< perms, slice start, axis, input index
  std::vector<double> values;  ///< const data (one value: splat), clamp bounds
};

/// The operand count of a TOSA elementwise op the graph lowering computes
/// ("add", "exp", ... without "tosa."), or -1 if it has no row in the
/// table (compiler/Halide/GraphPipeline.cpp, kElementwise).
int graphElementwiseArity(const std::string &tosaName);

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

/// A kernel as the compiler builds it: the manifest's description plus
/// what only code generation needs (graph nodes, selection head shapes).
struct KernelDesc {
  std::string name;   ///< unique in the module; symbols derive from it
  KernelKind kind = KernelKind::Graph;
  std::string loc;    ///< source location of the op, for messages
  AttentionSpec attention; ///< attention, sparse_attention, dense_rows, delta_correct
  SparseSpec sparse;       ///< sparse_attention
  SelectSpec select;       ///< select
  int64_t stride = 0;      ///< dense_rows, delta_correct
  GraphSpec graph;         ///< graph
  std::vector<std::string> inputs;  ///< buffer names (entry inputs or temps)
  std::vector<std::string> outputs; ///< buffer names (entry outputs or temps)
  std::vector<size_t> deps; ///< earlier kernels whose outputs it reads
  /// attention with a bf16/f16 query on a CUDA target: the tensor-core
  /// kernel (built by the MLIR half), used instead of Halide's.
  std::optional<PtxKernel> tensorCore;
  /// dense attention with it: the split-K decode kernels for a few rows
  /// (buildDecodeAttention); a GEMM's GEMV (buildGemv): a variant of at most
  /// maxRows rows before the tile's.
  std::optional<PtxKernel> decode;
  /// select with a bf16/f16 query on a CUDA target: the device selection
  /// kernels (MLIR-built PTX), used instead of Halide's.
  std::optional<DeviceSelectKernels> deviceSelect;

  /// The manifest's description of this kernel, without variants (the
  /// emitter adds them as it compiles).
  manifest::KernelSpec manifestSpec() const {
    manifest::KernelSpec m;
    m.name = name;
    m.kind = kind;
    m.loc = loc;
    m.inputs = inputs;
    m.outputs = outputs;
    m.attention = attention;
    m.sparse = sparse;
    m.select = select;
    m.stride = stride;
    if (kind == KernelKind::Graph)
      m.ops = graph.opsSummary();
    m.deps = deps;
    return m;
  }
};

struct EntryDesc {
  std::string name;
  std::vector<TensorSpec> inputs, outputs, temporaries;
  std::vector<KernelDesc> kernels; ///< in a valid execution order
  /// Every SSA value of the function as one buffer each (before fusion and
  /// planning): the baseline the buffer plan is measured against.
  std::vector<TensorSpec> valueBuffers;
};

/// --target=cuda: splits every graph kernel whose matmul takes a 16-bit
/// weight in nn.Linear's layout (and fits buildTensorCoreGemm) into A's
/// kernel (when A is computed), the matmul alone and its epilogue (when it
/// has one), recomputing the entry's deps; returns the matmul-alone
/// kernels (compiler/TensorCore/GemmSplit.cpp). Kernels whose rows are
/// static and below kGemmMinRows (decode) split only `withGemv` (the
/// GEMV runs them; otherwise Halide's kernel does, unsplit).
std::vector<GemmKernel> splitTensorCoreGemms(EntryDesc &e, bool withGemv = false);

struct ModuleDesc {
  std::string target; ///< deltaflow target name (host, x86-64-avx2, ...)
  std::vector<EntryDesc> entries;
};

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_KERNELSPEC_H
