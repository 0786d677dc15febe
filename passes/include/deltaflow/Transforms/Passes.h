//===- Passes.h - deltaflow passes ------------------------------*- C++ -*-===//
#ifndef DELTAFLOW_TRANSFORMS_PASSES_H
#define DELTAFLOW_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"

namespace mlir {
class DialectRegistry;
namespace deltaflow {

#define GEN_PASS_DECL
#include "deltaflow/Transforms/Passes.h.inc"

/// registerDeltaflowPasses(): every deltaflow pass, into the global registry.
#define GEN_PASS_REGISTRATION
#include "deltaflow/Transforms/Passes.h.inc"

/// Registers the dialects deltaflow tools accept: func, arith, tensor, tosa
/// and attn.
void registerDeltaflowDialects(DialectRegistry &registry);

/// Adds window, token-select, adaptive and block-topk to the policy registry
/// (SparsityPolicy.h). Idempotent; the sparsify pass calls it too.
void registerBuiltinSparsityPolicies();

} // namespace deltaflow
} // namespace mlir

#endif // DELTAFLOW_TRANSFORMS_PASSES_H
