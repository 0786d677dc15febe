//===- Common.h - small helpers shared by the benchmark suites ------------===//
#ifndef DELTAFLOW_BENCH_COMMON_H
#define DELTAFLOW_BENCH_COMMON_H

#include "deltaflow/Runtime/Tensor.h"

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace deltaflow::bench {

[[noreturn]] void die(const std::string &msg);
/// Positive integers separated by commas; dies naming `opt` otherwise.
std::vector<int64_t> parseList(const std::string &opt, const std::string &s);
/// The value of option argv[i] (argv[i + 1], advancing i); dies if missing.
std::string optionValue(int &i, int argc, char **argv);
/// The first of a positive integer option's values (parseList).
int64_t positiveOption(int &i, int argc, char **argv);
/// Minimum wall time of `repeat` calls, in seconds.
double timeMin(int repeat, const std::function<void()> &fn);
/// ||a - b|| / ||b||.
double relativeL2(const rt::Tensor &a, const rt::Tensor &b);
/// Mean over rows (the innermost dimension is the vector) of cos(a, b).
double meanCosine(const rt::Tensor &a, const rt::Tensor &b);
/// Writes `text` to `path` through a temporary file and a rename.
void writeFileAtomically(const std::string &path, const std::string &text);

} // namespace deltaflow::bench

#endif
