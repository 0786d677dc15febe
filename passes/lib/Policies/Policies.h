//===- Policies.h - the in-tree sparsity policies ---------------*- C++ -*-===//
#ifndef DELTAFLOW_PASSES_POLICIES_POLICIES_H
#define DELTAFLOW_PASSES_POLICIES_POLICIES_H

#include "deltaflow/Transforms/SparsityPolicy.h"

namespace deltaflow::sparsity {

// One per file in this directory.
Policy windowPolicy();
Policy tokenSelectPolicy();
Policy adaptivePolicy();
Policy blockTopKPolicy();

/// "" or the reason sinks/window/chunk are out of range.
std::string checkCommonParams(const Params &params);
/// "" or the reason `name` is not an integer in [lo, hi].
std::string checkIntParam(const Params &params, const std::string &name,
                          int64_t lo, int64_t hi);

} // namespace deltaflow::sparsity

#endif // DELTAFLOW_PASSES_POLICIES_POLICIES_H
