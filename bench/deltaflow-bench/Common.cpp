//===- Common.cpp - see Common.h ------------------------------------------===//

#include "Common.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace deltaflow::bench {

void die(const std::string &msg) {
  std::fprintf(stderr, "deltaflow-bench: error: %s\n", msg.c_str());
  std::exit(2);
}

std::vector<int64_t> parseList(const std::string &opt, const std::string &s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      size_t used;
      long long v = std::stoll(item, &used);
      if (used != item.size() || v < 1)
        throw std::invalid_argument(item);
      out.push_back(v);
    } catch (const std::exception &) {
      die(opt + " expects positive integers separated by commas, got '" + s + "'");
    }
  }
  if (out.empty())
    die(opt + " expects positive integers separated by commas, got '" + s + "'");
  return out;
}

std::string optionValue(int &i, int argc, char **argv) {
  if (i + 1 >= argc)
    die(std::string(argv[i]) + " needs a value");
  return argv[++i];
}

int64_t positiveOption(int &i, int argc, char **argv) {
  std::string name = argv[i];
  return parseList(name, optionValue(i, argc, argv)).at(0);
}

void helpOrUnknown(const std::string &arg, const char *usage) {
  if (arg == "-h" || arg == "--help") {
    std::fputs(usage, stdout);
    std::exit(0);
  }
  die("unknown option '" + arg + "'");
}

void requireChunkContexts(const std::string &opt, const std::vector<int64_t> &ns) {
  for (int64_t n : ns)
    if (n < 512)
      die(opt + ": N must be at least the 512-query chunk, got " +
          std::to_string(n));
}

double timeMin(int repeat, const std::function<void()> &fn) {
  double best = 1e300;
  for (int r = 0; r < repeat; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(
                              std::chrono::steady_clock::now() - t0)
                              .count());
  }
  return best;
}

double relativeL2(const rt::Tensor &a, const rt::Tensor &b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    double d = double(a.f32()[i]) - double(b.f32()[i]);
    num += d * d;
    den += double(b.f32()[i]) * double(b.f32()[i]);
  }
  return std::sqrt(num / den);
}

double meanCosine(const rt::Tensor &a, const rt::Tensor &b) {
  int64_t d = a.shape().back(), rows = a.numel() / d;
  double sum = 0;
  for (int64_t r = 0; r < rows; ++r) {
    double ab = 0, aa = 0, bb = 0;
    for (int64_t e = 0; e < d; ++e) {
      double x = a.f32()[r * d + e], y = b.f32()[r * d + e];
      ab += x * y, aa += x * x, bb += y * y;
    }
    sum += ab / std::sqrt(aa * bb + 1e-300);
  }
  return sum / double(rows);
}

void writeFileAtomically(const std::string &path, const std::string &text) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << text;
    if (!out)
      die("cannot write '" + path + "'");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    die("cannot write '" + path + "'");
}

void Targets::add(const std::string &what, double value, const char *op,
                  double bound, bool met) {
  rows_.push_back({{"target", what}, {"value", value}, {"op", op},
                   {"bound", bound}, {"met", met}});
}
void Targets::atLeast(const std::string &what, double value, double bound) {
  add(what, value, ">=", bound, value >= bound);
}
void Targets::atMost(const std::string &what, double value, double bound) {
  add(what, value, "<=", bound, value <= bound);
}
void Targets::print(const char *title) const {
  if (rows_.empty())
    return;
  std::printf("\n%s\n", title);
  for (const auto &t : rows_)
    std::printf("  %-60s %9.3f %s %9.3f  %s\n",
                t["target"].get<std::string>().c_str(), t["value"].get<double>(),
                t["op"].get<std::string>().c_str(), t["bound"].get<double>(),
                t["met"].get<bool>() ? "met" : "MISSED");
}

} // namespace deltaflow::bench
