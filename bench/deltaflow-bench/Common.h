//===- Common.h - small helpers shared by the benchmark suites ------------===//
#ifndef DELTAFLOW_BENCH_COMMON_H
#define DELTAFLOW_BENCH_COMMON_H

#include "deltaflow/Runtime/Tensor.h"

#include <nlohmann/json.hpp>

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
/// The options every suite ends with: -h/--help prints `usage` and exits 0;
/// anything else is an unknown option (dies).
[[noreturn]] void helpOrUnknown(const std::string &arg, const char *usage);
/// Dies naming `opt` unless every context length holds one 512-query chunk.
void requireChunkContexts(const std::string &opt, const std::vector<int64_t> &ns);
/// Minimum wall time of `repeat` calls, in seconds.
double timeMin(int repeat, const std::function<void()> &fn);
/// ||a - b|| / ||b||.
double relativeL2(const rt::Tensor &a, const rt::Tensor &b);
/// Mean over rows (the innermost dimension is the vector) of cos(a, b).
double meanCosine(const rt::Tensor &a, const rt::Tensor &b);
/// Writes `text` to `path` through a temporary file and a rename.
void writeFileAtomically(const std::string &path, const std::string &text);

/// An issue's targets judged on one run's numbers: each is "value >= bound"
/// or "value <= bound", printed met / MISSED and kept for the JSON.
class Targets {
public:
  void atLeast(const std::string &what, double value, double bound);
  void atMost(const std::string &what, double value, double bound);
  /// Prints `title` and one line per target (nothing when there are none).
  void print(const char *title) const;
  const nlohmann::ordered_json &json() const { return rows_; }

private:
  void add(const std::string &what, double value, const char *op, double bound,
           bool met);
  nlohmann::ordered_json rows_ = nlohmann::ordered_json::array();
};

} // namespace deltaflow::bench

#endif
