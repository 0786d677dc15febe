//===- TosaOps.h - the TOSA subset the graph lowering knows -----*- C++ -*-===//
//
// Private to the partitioner: classifies TOSA ops (elementwise, layout,
// anchor), describes one op as a GraphNode, and derives the symbolic
// dimensions of its result.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_LOWERING_TOSAOPS_H
#define DELTAFLOW_COMPILER_LOWERING_TOSAOPS_H

#include "deltaflow/Compiler/KernelSpec.h"

#include "mlir/IR/Operation.h"
#include "llvm/ADT/STLFunctionalExtras.h"

namespace mlir::deltaflow::tosa_lowering {

enum class OpClass { Unsupported, Const, Elementwise, Layout, Anchor };

/// Anchors (matmul, reduce_sum, reduce_max) are kernel boundaries;
/// elementwise and layout ops inline into their consumers.
OpClass classify(Operation *op);

/// Fills `node.op`, `ints` and `values` (not operands or shape). Fails with
/// a located error for attributes outside the supported subset.
LogicalResult describe(Operation *op, ::deltaflow::compiler::GraphNode &node);

using DimsOf = llvm::function_ref<const std::vector<::deltaflow::compiler::Dim> &(Value)>;

/// Symbolic dimensions of the op's (single) result from those of its operands.
FailureOr<std::vector<::deltaflow::compiler::Dim>> resultDims(Operation *op,
                                                                  DimsOf dimsOf);

} // namespace mlir::deltaflow::tosa_lowering

#endif // DELTAFLOW_COMPILER_LOWERING_TOSAOPS_H
