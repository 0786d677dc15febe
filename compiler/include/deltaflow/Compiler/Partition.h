//===- Partition.h - split MLIR functions into kernels ----------*- C++ -*-===//
#ifndef DELTAFLOW_COMPILER_PARTITION_H
#define DELTAFLOW_COMPILER_PARTITION_H

#include "deltaflow/Compiler/KernelSpec.h"

#include "mlir/Support/LogicalResult.h"

namespace mlir {
class ModuleOp;
} // namespace mlir

namespace mlir::deltaflow {

/// Turns every public func.func of `module` into an entry: its arguments are
/// the entry inputs, each attention op one kernel, its results the outputs.
/// Emits located diagnostics for anything the lowering cannot handle.
FailureOr<::deltaflow::compiler::ModuleDesc> partitionModule(ModuleOp module);

} // namespace mlir::deltaflow

#endif // DELTAFLOW_COMPILER_PARTITION_H
