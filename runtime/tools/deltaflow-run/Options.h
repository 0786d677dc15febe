//===- Options.h - command-line pieces of deltaflow-run ---------*- C++ -*-===//
//
// Shared by `deltaflow-run`, `deltaflow-run generate` and `deltaflow-run
// shard`: an option's value (`--name VALUE` or `--name=VALUE`), whole
// integers in a range, and the type conversion of .npy inputs.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_RUN_OPTIONS_H
#define DELTAFLOW_RUN_OPTIONS_H

#include "deltaflow/Runtime/Tensor.h"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace deltaflow::rt {

/// If args[i] is option `name`, stores its value (advancing i past a
/// separate value) and returns true. A `name` with nothing after it calls
/// `fail("NAME needs a value")`, which must not return.
template <class Fail>
bool takeOption(const std::vector<std::string> &args, size_t &i,
                const std::string &name, std::string &value, Fail fail) {
  const std::string &a = args[i];
  if (a == name) {
    if (i + 1 >= args.size())
      fail(name + " needs a value");
    value = args[++i];
    return true;
  }
  if (a.rfind(name + "=", 0) == 0) {
    value = a.substr(name.size() + 1);
    return true;
  }
  return false;
}

/// A command-line error: "COMMAND: error: MSG" and where --help is, then
/// exit status 2.
[[noreturn]] inline void exitWithUsageError(const std::string &command,
                                            const std::string &msg) {
  std::fprintf(stderr, "%s: error: %s\n", command.c_str(), msg.c_str());
  std::fprintf(stderr, "run '%s --help' for usage\n", command.c_str());
  std::exit(2);
}

/// `v` as a whole integer in [lo, hi]; nothing if it is not one.
inline std::optional<int64_t> parseInteger(const std::string &v, int64_t lo,
                                           int64_t hi) {
  try {
    size_t used = 0;
    long long n = std::stoll(v, &used);
    if (used == v.size() && n >= lo && n <= hi)
      return n;
  } catch (const std::exception &) {
  }
  return std::nullopt;
}

/// A tensor read from a .npy file for an entry input of type `want`: f16
/// data of an f32 input is widened, f32 data of a bf16 input is rounded to
/// nearest even (NumPy has no bf16); anything else is kept as read (the
/// executor checks the type).
inline Tensor convertInput(Tensor t, DType want) {
  if (want == DType::Float32 && t.dtype() == DType::Float16)
    return t.toFloat32();
  if (want == DType::BFloat16 && t.dtype() == DType::Float32)
    return t.toBFloat16();
  return t;
}

} // namespace deltaflow::rt

#endif
