//===- Builtin.cpp - attach the in-tree selection kernels to the registry -===//
//
// The policies themselves are registered by the MLIR side
// (registerBuiltinSparsityPolicies); call that first.
//
//===----------------------------------------------------------------------===//

#include "Selection.h"

#include "deltaflow/Transforms/SparsityPolicy.h"

namespace deltaflow::compiler {

void attachBuiltinSelectionKernels() {
  const std::pair<const char *, void (*)(SelectionBuild &)> kernels[] = {
      {"token-select", buildTokenSelectKernel},
      {"adaptive", buildAdaptiveKernel},
      {"block-topk", buildBlockTopKKernel}};
  for (auto [name, build] : kernels)
    if (sparsity::Policy *p = sparsity::findPolicy(name))
      if (!p->buildKernel)
        p->buildKernel = build;
}

} // namespace deltaflow::compiler
