//===- Builtin.cpp - registers the in-tree sparsity policies --------------===//
//
// One line per policy. Tools call registerBuiltinSparsityPolicies() before
// they parse IR, so the policy attributes' verifiers find every policy's
// bounds in the registry.
//
//===----------------------------------------------------------------------===//

#include "Policies.h"

#include "deltaflow/Transforms/Passes.h"

#include <mutex>

void mlir::deltaflow::registerBuiltinSparsityPolicies() {
  static std::once_flag once;
  std::call_once(once, [] {
    using namespace ::deltaflow::sparsity;
    registerPolicy(windowPolicy());
    registerPolicy(tokenSelectPolicy());
    registerPolicy(adaptivePolicy());
    registerPolicy(blockTopKPolicy());
    registerPolicy(stridedPolicy());
  });
}
