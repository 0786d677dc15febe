//===- Overhead.cpp - the executor's fixed cost per decode step -----------===//
//
// deltaflow-bench overhead: decode steps of a small model (the tiny Llama
// of the tests by default), timed as a whole and kernel by kernel on one
// thread. The executor's fixed cost per step is the step's wall time less
// the sum of its kernels' times: input checks, allocation, the buffer plan,
// the flow graph, and the profile itself. Printed next to the kernels' own
// time, measured in the same run.
//
// Uses only the runtime's public API, so the same file builds against an
// older runtime (-DDELTAFLOW_OVERHEAD_MAIN) for before/after comparisons.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Runtime/Session.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

} // namespace

int runOverhead(int argc, char **argv) {
  using namespace deltaflow;
  std::string module = DELTAFLOW_OVERHEAD_MODULE, weights;
  int tokens = 2000, threads = 1;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    auto count = [&]() {
      std::string v = value();
      char *end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end || n < 1 || n > 1000000)
        throw std::runtime_error(a + " must be an integer in [1, 1000000], got '" +
                                 v + "'");
      return int(n);
    };
    if (a == "--module")
      module = value();
    else if (a == "--weights")
      weights = value();
    else if (a == "--tokens")
      tokens = count();
    else if (a == "--threads")
      threads = count();
    else if (a == "-h" || a == "--help") {
      std::puts("usage: deltaflow-bench overhead [--module M.so] [--weights W.safetensors]\n"
                "                                [--tokens N] [--threads T]\n"
                "Decode steps of a small model; prints the executor's fixed cost per\n"
                "step (wall time less the kernels' time) next to the kernels' time.\n"
                "Defaults: the tests' tiny Llama, 2000 tokens, 1 thread.");
      return 0;
    } else
      throw std::runtime_error("unknown option '" + a + "'");
  }
  if (weights.empty()) {
    weights = module;
    if (weights.size() > 3 && weights.compare(weights.size() - 3, 3, ".so") == 0)
      weights.resize(weights.size() - 3);
    weights += ".safetensors";
  }
  auto model = rt::Model::load(module, weights, threads);
  rt::SessionOptions so;
  so.capacity = tokens + 64;
  rt::Session session(model, so);
  std::vector<int32_t> prompt(16);
  for (size_t i = 0; i < prompt.size(); ++i)
    prompt[i] = int32_t(i % size_t(model->vocab()));
  session.prefill(prompt, 0);
  std::vector<double> wall, kernels, overhead;
  size_t nKernels = 0;
  for (int t = 0; t < tokens; ++t) {
    rt::StepStats st;
    session.decode(int32_t(t % model->vocab()), &st);
    double k = 0;
    for (const rt::KernelTiming &kt : st.profile)
      k += kt.seconds;
    nKernels = st.profile.size();
    if (t < 20)
      continue; // warm-up: first runs build graphs and plans
    wall.push_back(st.seconds);
    kernels.push_back(k);
    overhead.push_back(st.seconds - k);
  }
  double w = median(wall) * 1e6, k = median(kernels) * 1e6,
         o = median(overhead) * 1e6;
  std::printf("executor overhead: %s, %d threads, %zu kernels per decode step, "
              "%zu steps timed\n",
              module.c_str(), threads, nKernels, wall.size());
  std::printf("  step %.1f us = kernels %.1f us + fixed cost %.1f us "
              "(%.2f us per kernel; fixed / kernels = %.2f)\n",
              w, k, o, nKernels ? o / double(nKernels) : 0.0, k > 0 ? o / k : 0.0);
  std::printf("  (fraction of peak: not applicable; the fixed cost is host "
              "bookkeeping, compared with the kernels of the same steps)\n");
  return 0;
}

#ifdef DELTAFLOW_OVERHEAD_MAIN
int main(int argc, char **argv) {
  try {
    return runOverhead(argc, argv);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "deltaflow-bench: error: %s\n", e.what());
    return 1;
  }
}
#endif
