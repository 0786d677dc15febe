//===- PolicyRegistry.cpp - the one table of sparsity policies ------------===//
//
// Built as its own shared library so the tools and every plug-in share it.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Transforms/SparsityPolicy.h"

#include <cmath>
#include <cstdio>
#include <memory>
#include <mutex>

namespace deltaflow::sparsity {

namespace {
struct Registry {
  std::mutex mutex;
  std::vector<std::unique_ptr<Policy>> policies;
  std::vector<std::string> errors;
};
Registry &registry() {
  static Registry r;
  return r;
}
} // namespace

bool registerPolicy(Policy policy, std::string *error) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::string why;
  if (policy.name.empty())
    why = "a sparsity policy was registered without a name";
  for (const auto &p : r.policies)
    if (p->name == policy.name)
      why = "sparsity policy '" + policy.name + "' is already registered";
  if (!why.empty()) {
    r.errors.push_back(why);
    if (error)
      *error = why;
    return false;
  }
  r.policies.push_back(std::make_unique<Policy>(std::move(policy)));
  return true;
}

Policy *findPolicy(const std::string &name) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  for (const auto &p : r.policies)
    if (p->name == name)
      return p.get();
  return nullptr;
}

std::vector<std::string> policyNames() {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> names;
  for (const auto &p : r.policies)
    names.push_back(p->name);
  return names;
}

std::vector<std::string> takeRegistrationErrors() {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mutex);
  std::vector<std::string> errors;
  errors.swap(r.errors);
  return errors;
}

std::vector<ParamSpec> commonParams() {
  return {{"sinks", 0, double(int64_t(1) << 24)},
          {"window", 0, double(int64_t(1) << 24)},
          {"chunk", 1, double(int64_t(1) << 20)}};
}

std::vector<ParamSpec> withCommonParams(std::vector<ParamSpec> own) {
  std::vector<ParamSpec> all = commonParams();
  all.insert(all.end(), own.begin(), own.end());
  return all;
}

namespace {
std::string number(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15)
    std::snprintf(buf, sizeof buf, "%.0f", v);
  else
    std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}
} // namespace

std::string checkParams(const Policy *policy, const Params &params) {
  std::vector<ParamSpec> specs = policy ? policy->params : commonParams();
  for (const ParamSpec &p : specs) {
    auto it = params.find(p.name);
    if (it == params.end())
      return "missing parameter '" + p.name + "'";
    double v = it->second;
    bool inRange = (p.loOpen ? v > p.lo : v >= p.lo) && v <= p.hi;
    if (p.integer && (v != std::floor(v) || !inRange))
      return p.name + " must be an integer in [" + number(p.lo) + ", " +
             number(p.hi) + "], got " + number(v);
    if (!inRange)
      return p.name + " must be in " + (p.loOpen ? "(" : "[") + number(p.lo) +
             ", " + number(p.hi) + "], got " + number(v);
  }
  return policy && policy->check ? policy->check(params) : "";
}

int64_t paramInt(const Params &params, const std::string &name) {
  auto it = params.find(name);
  return it == params.end() ? 0 : int64_t(std::llround(it->second));
}

} // namespace deltaflow::sparsity
