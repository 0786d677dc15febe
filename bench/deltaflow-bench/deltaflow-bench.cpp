//===- deltaflow-bench.cpp - benchmark suites ------------------------------===//
//
//   deltaflow-bench sparse [--contexts ...] [--whole ...] [--json F] [--svg F]
//   deltaflow-bench dense [--module attention.so] [--threads 2]
//                   [--prefill 4096,16384] [--decode 16384,65536,131072]
//                   [--repeat 3] [--json FILE]
//
// Every number is measured in this run: the machine's FMA peak and STREAM
// bandwidth, our compiled kernel, and a GEMM-softmax-GEMM baseline on
// OpenBLAS over the same inputs (whose output also checks ours).
//
//===----------------------------------------------------------------------===//

#include "BlasAttention.h"
#include "Common.h"
#include "Machine.h"
#include "SparseSuite.h"

#include "deltaflow/Runtime/Executor.h"

#include <nlohmann/json.hpp>
#include <oneapi/tbb/global_control.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace deltaflow;
using namespace deltaflow::bench;

namespace {

const char *kUsage = R"(usage: deltaflow-bench SUITE [options]

suites:
  dense   compiled dense attention (examples/attention.mlir: Hq=32, Hkv=8,
          D=128, fp32, causal) vs a GEMM-softmax-GEMM baseline on OpenBLAS,
          with this machine's measured FMA peak and STREAM bandwidth
  sparse  every sparsity policy with and without the Delta correction vs
          our dense kernel, on structured inputs: speed and fidelity
          (deltaflow-bench sparse --help)

options:
  --module FILE.so     compiled examples/attention.mlir (default: the build's)
  --threads N          threads for everything (default 2)
  --prefill LIST       prefill lengths, Nq = Nk (default 4096,16384)
  --decode LIST        decode context lengths, Nq = 1 (default 16384,65536,131072)
  --repeat N           timed runs per case; the minimum is reported (default 3)
  --json FILE          also write the results as JSON
)";

int runDense(int argc, char **argv) {
  std::string module = DELTAFLOW_BENCH_MODULE, jsonPath;
  int threads = 2, repeat = 3;
  std::vector<int64_t> prefill = {4096, 16384}, decode = {16384, 65536, 131072};
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&] { return optionValue(i, argc, argv); };
    if (a == "--module")
      module = value();
    else if (a == "--threads")
      threads = int(positiveOption(i, argc, argv));
    else if (a == "--repeat")
      repeat = int(positiveOption(i, argc, argv));
    else if (a == "--prefill")
      prefill = parseList(a, value());
    else if (a == "--decode")
      decode = parseList(a, value());
    else if (a == "--json")
      jsonPath = value();
    else if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else
      die("unknown option '" + a + "'");
  }
  tbb::global_control limit(tbb::global_control::max_allowed_parallelism, threads);

  std::fprintf(stderr, "[bench] measuring this machine (%d threads)...\n", threads);
  bench::MachinePeak peak = bench::measureMachine(threads);
  bench::printMachine(peak, threads);
  std::printf("\n");

  auto mod = rt::Module::load(module);
  rt::Executor exec(mod, threads);
  const int64_t Hq = 32, Hkv = 8, D = 128;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();

  std::printf("%-22s %10s %12s %8s %12s %9s %10s\n", "case", "ours ms",
              "rate", "% peak", "OpenBLAS ms", "speedup", "rel L2");
  auto report = [&](const std::string &name, double ours, double blas,
                    double rate, const char *unit, double frac, double err) {
    std::printf("%-22s %10.2f %7.1f %-4s %7.1f%% %12.2f %8.2fx %10.2e\n",
                name.c_str(), ours * 1e3, rate, unit, frac * 100, blas * 1e3,
                blas / ours, err);
    std::fflush(stdout);
    results.push_back({{"case", name}, {"ours_ms", ours * 1e3},
                       {"rate", rate}, {"unit", unit}, {"fraction_of_peak", frac},
                       {"openblas_ms", blas * 1e3}, {"speedup_vs_openblas", blas / ours},
                       {"rel_l2_vs_openblas", err}});
  };

  for (int64_t n : prefill) {
    std::fprintf(stderr, "[bench] prefill N=%lld: ours...\n", (long long)n);
    auto in = std::map<std::string, rt::Tensor>{
        {"q", rt::randomNormal({1, Hq, n, D}, 1)},
        {"k", rt::randomNormal({1, Hkv, n, D}, 2)},
        {"v", rt::randomNormal({1, Hkv, n, D}, 3)}};
    int reps = n > 8192 ? 1 : repeat;
    rt::Tensor ours;
    double tOurs = timeMin(reps, [&] { ours = exec.run("attention", in).at("out"); });
    std::fprintf(stderr, "[bench] prefill N=%lld: OpenBLAS...\n", (long long)n);
    rt::Tensor ref;
    double tBlas = timeMin(reps, [&] {
      ref = bench::blasAttention(in["q"], in["k"], in["v"], true, threads);
    });
    double flops = 4.0 * Hq * double(n) * double(n) * D / 2;
    double gf = flops / tOurs / 1e9;
    report("prefill causal N=" + std::to_string(n), tOurs, tBlas, gf, "GF/s",
           gf / peak.fmaGflops, relativeL2(ours, ref));
  }
  for (int64_t n : decode) {
    std::fprintf(stderr, "[bench] decode L=%lld...\n", (long long)n);
    auto in = std::map<std::string, rt::Tensor>{
        {"q", rt::randomNormal({1, Hq, 1, D}, 4)},
        {"k", rt::randomNormal({1, Hkv, n, D}, 5)},
        {"v", rt::randomNormal({1, Hkv, n, D}, 6)}};
    rt::Tensor ours, ref;
    double tOurs = timeMin(repeat + 2, [&] { ours = exec.run("attention", in).at("out"); });
    double tBlas = timeMin(repeat + 2, [&] {
      ref = bench::blasAttention(in["q"], in["k"], in["v"], true, threads);
    });
    double bytes = 2.0 * Hkv * double(n) * D * 4;
    double gbs = bytes / tOurs / 1e9;
    report("decode L=" + std::to_string(n), tOurs, tBlas, gbs, "GB/s",
           gbs / peak.streamGBs, relativeL2(ours, ref));
  }
  std::printf("\nrate: GFLOP/s = 4*Hq*Nq*Nk*D/2 (causal); GB/s = K+V bytes read. "
              "%% peak: of the FMA loop (prefill) or STREAM triad (decode) "
              "above. rel L2: ours vs OpenBLAS output.\n");

  if (!jsonPath.empty()) {
    nlohmann::ordered_json doc = {
        {"suite", "dense"},
        {"threads", threads},
        {"machine", {{"fma_gflops", peak.fmaGflops}, {"stream_gbs", peak.streamGBs},
                     {"isa", peak.isa}}},
        {"module", module},
        {"results", results}};
    writeFileAtomically(jsonPath, doc.dump(2) + "\n");
    std::fprintf(stderr, "[bench] wrote %s\n", jsonPath.c_str());
  }
  return 0;
}

} // namespace

int main(int argc, char **argv) {
  if (argc < 2 || std::string(argv[1]) == "-h" || std::string(argv[1]) == "--help") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string suite = argv[1];
  try {
    if (suite == "dense")
      return runDense(argc, argv);
    if (suite == "sparse")
      return runSparse(argc, argv);
  } catch (const std::exception &e) {
    die(e.what());
  }
  die("unknown suite '" + suite + "' (suites: dense, sparse)");
}
