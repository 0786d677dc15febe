//===- SparsityPolicy.h - the selection-policy registry ---------*- C++ -*-===//
//
// A sparsity policy decides which keys a chunk of queries attends to, besides
// the sinks and the local window. `attn-sparsify{policy=NAME ...}` looks the
// policy up here by name. A policy is one C++ file: in-tree under
// passes/lib/Policies/ plus its Halide kernel under compiler/Halide/Selection/,
// or out of tree as a pass plug-in (examples/plugin/) that registers both.
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

struct Policy {
  std::string name;
  std::string summary;
  /// The parameters this policy reads (documentation and --help).
  std::vector<std::string> knobs;
  /// False for policies that select nothing beyond sinks + window.
  bool selects = true;
  /// One index set per KV head (true) or one shared by all heads (false).
  bool perKvHead = false;
  /// Returns "" when `params` are valid, else a one-line reason.
  std::function<std::string(const Params &)> check;
  /// Index slots per (chunk, head set): the largest selection size.
  std::function<int64_t(const Params &)> slots;
  /// The policy's attribute (`#attn.token_select<...>`, ...). Unset for
  /// plug-ins: they get `#attn.policy<"name", {params}>`.
  std::function<mlir::Attribute(mlir::MLIRContext *, const Params &)> toAttr;
  /// The inverse of toAttr; nullopt if the attribute is not this policy's.
  std::function<std::optional<Params>(mlir::Attribute)> fromAttr;
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

} // namespace deltaflow::sparsity

#endif // DELTAFLOW_TRANSFORMS_SPARSITYPOLICY_H
