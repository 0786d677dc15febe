//===- SparsityPolicy.h - the selection-policy registry ---------*- C++ -*-===//
//
// A sparsity policy decides which keys a chunk of queries attends to, besides
// the sinks and the local window. `attn-sparsify{policy=NAME ...}` looks the
// policy up here by name, and the dialect's policy attributes
// (SelectionPolicyAttrInterface) answer sinks, window, chunk, slots and the
// per-head form from it. A policy is one C++ file with its parameters, its
// checks and its Halide kernel: in tree under passes/lib/Policies/ plus one
// line in its Builtin.cpp, or out of tree as a pass plug-in
// (examples/plugin/).
//
// This header is plain C++ (no MLIR, no Halide definitions), and the
// registry lives in its own shared library, so a plug-in loaded into any
// deltaflow tool registers into the same table the tool reads.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_TRANSFORMS_SPARSITYPOLICY_H
#define DELTAFLOW_TRANSFORMS_SPARSITYPOLICY_H

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mlir {
class Attribute;
class MLIRContext;
} // namespace mlir

namespace deltaflow::compiler {
struct SelectionBuild; // compiler/include/deltaflow/Compiler/SelectionKernel.h
} // namespace deltaflow::compiler

namespace deltaflow::sparsity {

/// Policy parameters by name: budget, sinks, window, chunk, p, page, ...
using Params = std::map<std::string, double>;

/// A declared parameter and its bounds, checked by checkParams (the one
/// place parameter bounds are checked: the pass, the attribute verifiers).
struct ParamSpec {
  std::string name;
  double lo = 0, hi = 0; ///< inclusive
  bool integer = true;
  bool loOpen = false;   ///< (lo, hi]: for a probability such as p
};
/// sinks in [0, 2^24], window in [0, 2^24], chunk in [1, 2^20]: every policy
/// has them.
std::vector<ParamSpec> commonParams();
/// commonParams() followed by a policy's own parameters.
std::vector<ParamSpec> withCommonParams(std::vector<ParamSpec> own);
/// The largest budget a policy accepts (2^24 keys).
inline constexpr double kMaxBudget = double(int64_t(1) << 24);

struct Policy {
  std::string name;
  std::string summary;
  /// The parameters this policy reads, with their bounds (commonParams()
  /// included); documentation, --help and checkParams.
  std::vector<ParamSpec> params;
  /// False for policies that select nothing beyond sinks + window.
  bool selects = true;
  /// One index set per KV head (true) or one shared by all heads (false).
  bool perKvHead = false;
  /// Constraints between parameters beyond their bounds (max_budget >=
  /// min_budget, ...): "" or a one-line reason. Optional.
  std::function<std::string(const Params &)> check;
  /// Index slots per (chunk, head set): the largest selection size.
  std::function<int64_t(const Params &)> slots;
  /// The policy's own attribute (`#attn.token_select<...>`, ...); unset:
  /// `#attn.policy<"name", {params}>`. Either answers the policy's
  /// questions through SelectionPolicyAttrInterface.
  std::function<mlir::Attribute(mlir::MLIRContext *, const Params &)> toAttr;
  /// Defines the selection's Halide algorithm and schedule (compiler side).
  std::function<void(compiler::SelectionBuild &)> buildKernel;
};

/// Adds `policy`. Returns false and fills `error` if the name is empty or
/// already taken; the error is also kept for takeRegistrationErrors().
bool registerPolicy(Policy policy, std::string *error = nullptr);
/// nullptr if unknown.
Policy *findPolicy(const std::string &name);
std::vector<std::string> policyNames();
/// Errors of registrations that had nobody to report to (plug-ins loaded by
/// MLIR's --load-pass-plugin); tools report them and fail.
std::vector<std::string> takeRegistrationErrors();

/// sinks, window and chunk, which every policy has.
int64_t paramInt(const Params &params, const std::string &name);

/// "" when every declared parameter of `policy` is present and within its
/// bounds and `policy.check` passes, else a one-line reason naming the
/// parameter. A null policy checks commonParams() only.
std::string checkParams(const Policy *policy, const Params &params);

} // namespace deltaflow::sparsity

#endif // DELTAFLOW_TRANSFORMS_SPARSITYPOLICY_H
