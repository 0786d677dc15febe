//===- Passes.h - deltaflow passes ------------------------------*- C++ -*-===//
#ifndef DELTAFLOW_TRANSFORMS_PASSES_H
#define DELTAFLOW_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"

#include <string>
#include <vector>

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

/// Loads MLIR pass plug-ins (which register sparsity policies); false with a
/// one-line `error` on the first failure or duplicate policy name.
bool loadPassPlugins(const std::vector<std::string> &paths, std::string &error);

/// Removes `--load-pass-plugin=PATH` / `--load-pass-plugin PATH` from argv
/// and returns the paths, so a tool loads them before parsing its options.
std::vector<std::string> takePluginArguments(int &argc, char **argv);

/// Adds window, token-select, adaptive and block-topk to the policy registry
/// (SparsityPolicy.h). Idempotent; the sparsify pass calls it too.
void registerBuiltinSparsityPolicies();

} // namespace deltaflow
} // namespace mlir

#endif // DELTAFLOW_TRANSFORMS_PASSES_H
