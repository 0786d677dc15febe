//===- Builtin.cpp - registers the in-tree policies -----------------------===//

#include "Policies.h"

#include "deltaflow/Transforms/Passes.h"

#include <cstdio>
#include <mutex>

namespace deltaflow::sparsity {

namespace {
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
} // namespace

std::string checkIntParam(const Params &params, const std::string &name,
                          int64_t lo, int64_t hi) {
  auto it = params.find(name);
  if (it == params.end())
    return "missing parameter '" + name + "'";
  double v = it->second;
  if (v != double(int64_t(v)) || v < double(lo) || v > double(hi))
    return name + " must be an integer in [" + std::to_string(lo) + ", " +
           std::to_string(hi) + "], got " + number(v);
  return "";
}

std::string checkCommonParams(const Params &params) {
  std::string why = checkIntParam(params, "sinks", 0, int64_t(1) << 24);
  if (why.empty())
    why = checkIntParam(params, "window", 0, int64_t(1) << 24);
  if (why.empty())
    why = checkIntParam(params, "chunk", 1, int64_t(1) << 20);
  return why;
}

} // namespace deltaflow::sparsity

void mlir::deltaflow::registerBuiltinSparsityPolicies() {
  static std::once_flag once;
  std::call_once(once, [] {
    using namespace ::deltaflow::sparsity;
    for (Policy (*make)() :
         {windowPolicy, tokenSelectPolicy, adaptivePolicy, blockTopKPolicy})
      registerPolicy(make());
  });
}
