//===- Generate.cpp - deltaflow-run generate: prefill + greedy decode -----===//
//
// Runs a model module (prefill + decode entries, e.g. examples/llama) on a
// prompt, with a dense build and optionally a sparse build side by side, and
// reports speed, the selection cache, agreement with dense and memory.
//
//===----------------------------------------------------------------------===//

#include "Generate.h"
#include "Options.h"

#include "deltaflow/Runtime/Npy.h"
#include "deltaflow/Runtime/Session.h"

#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <stdexcept>

namespace deltaflow::rt {

namespace {

const char *kGenerateUsage = R"(usage: deltaflow-run generate --dense DENSE.so --weights W.safetensors [options]

Prefills a prompt and decodes tokens greedily with a model module (entries
'prefill' and 'decode'; see examples/llama). With --sparse, the sparse build
runs the same prompt and is fed the dense build's tokens, so every decode
step compares the two on the same context.

options:
  --dense FILE.so         the dense build (reference)
  --sparse FILE.so        a sparse build of the same graph (optional)
  --sparse-greedy         the sparse build decodes greedily from its own
                          tokens (default: it is fed the dense build's, so
                          each step compares the two on the same context)
  --weights PATH          .safetensors weights (make_weights.py writes them), or
                          a Hugging Face checkpoint directory (model.safetensors
                          or the shards of model.safetensors.index.json)
  --prompt-len N          random prompt of N tokens (default 1024)
  --prompt FILE.npy       the prompt as int32 tokens instead
  --prompt-ids LIST       the prompt as comma-separated token ids (1,2,3)
  --prompt-text TEXT      the prompt as UTF-8 text, one token per byte, for
                          byte-level models (a vocabulary of 256); other
                          vocabularies need their tokenizer's ids (--prompt,
                          --prompt-ids), e.g. from Hugging Face tokenizers
  --prompt-file FILE      --prompt-text from a file
  --decode M              tokens to decode (default 16)
  --seed S                seed of the random prompt (default 1)
  --capacity C            KV-cache positions (default prompt + decode)
  --theta T               selection-cache threshold on cos(q, q_cached) (default 0.9)
  --no-selection-cache    recompute the selection at every decode step
  --prefill-chunk K       prefill in calls of K tokens (default: one call)
  --threads N             worker threads (default: all cores)
  --device N              GPU modules: run on GPU N (ignored by CPU modules)
  --no-kv-offload         CUDA modules: keep the KV cache in host memory and
                          copy it to the device each step (default: in GPU
                          memory, written there by the device)
  --warmup                before the timed run, prefill the same prompt and
                          decode 2 tokens in a scratch session and discard
                          them, so that the timings leave out first use (a
                          GPU module's code is loaded, and its PTX
                          JIT-compiled by the driver, on a kernel's first
                          call), as PyTorch benchmarks warm up
  --profile               print the slowest kernels of each build's prefill,
                          and decode kernel time per token by kernel kind
  --json FILE             also write the results as JSON
  --dump-dir DIR          write each build's logits (DIR/BUILD.logits.npy,
                          [steps, vocab]) and list the tokens fed in the JSON
                          (examples/llama/reference.py checks them)
  -h, --help              this text

The generated token ids (and, for a byte-level model, the text) of each
build are printed and written to --json ("generated").
)";

struct Args {
  std::string dense, sparse, weights, promptFile, promptIds, promptText, json, dumpDir;
  bool textGiven = false, sparseGreedy = false;
  int64_t promptLen = 1024, decode = 16, capacity = -1, chunk = -1;
  uint64_t seed = 1;
  double theta = 0.9;
  bool selectionCache = true, profile = false, warmup = false, kvOffload = true;
  int threads = 0, device = -1;
};

[[noreturn]] void fail(const std::string &msg, int code = 1) {
  std::fprintf(stderr, "deltaflow-run generate: error: %s\n", msg.c_str());
  std::exit(code);
}

int64_t parseCount(const std::string &opt, const std::string &v, int64_t lo) {
  if (auto n = parseInteger(v, lo, 1LL << 31))
    return *n;
  fail(opt + " expects an integer >= " + std::to_string(lo) + ", got '" + v + "'", 2);
}

Args parseArgs(const std::vector<std::string> &args) {
  Args a;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string s = args[i], value;
    auto take = [&](const std::string &name) {
      return takeOption(args, i, name, value,
                        [](const std::string &m) { fail(m, 2); });
    };
    if (s == "-h" || s == "--help") {
      std::fputs(kGenerateUsage, stdout);
      std::exit(0);
    } else if (take("--dense")) a.dense = value;
    else if (take("--sparse")) a.sparse = value;
    else if (take("--weights")) a.weights = value;
    else if (take("--prompt")) a.promptFile = value;
    else if (take("--prompt-ids")) a.promptIds = value;
    else if (take("--prompt-text")) a.promptText = value, a.textGiven = true;
    else if (take("--prompt-file")) {
      std::ifstream in(value, std::ios::binary);
      if (!in)
        fail("--prompt-file: cannot read '" + value + "'", 2);
      a.promptText.assign(std::istreambuf_iterator<char>(in), {});
      a.textGiven = true;
    }
    else if (take("--json")) a.json = value;
    else if (take("--dump-dir")) a.dumpDir = value;
    else if (take("--prompt-len")) a.promptLen = parseCount(s, value, 1);
    else if (take("--decode")) a.decode = parseCount(s, value, 0);
    else if (take("--capacity")) a.capacity = parseCount(s, value, 1);
    else if (take("--prefill-chunk")) a.chunk = parseCount(s, value, 1);
    else if (take("--threads")) a.threads = int(parseCount(s, value, 1));
    else if (take("--device")) a.device = int(parseCount(s, value, 0));
    else if (take("--seed")) a.seed = uint64_t(parseCount(s, value, 0));
    else if (take("--theta")) {
      try {
        a.theta = std::stod(value);
      } catch (const std::exception &) {
        fail("--theta expects a number, got '" + value + "'", 2);
      }
    } else if (s == "--no-selection-cache") a.selectionCache = false;
    else if (s == "--profile") a.profile = true;
    else if (s == "--warmup") a.warmup = true;
    else if (s == "--no-kv-offload") a.kvOffload = false;
    else if (s == "--sparse-greedy") a.sparseGreedy = true;
    else fail("unknown option '" + s + "'", 2);
  }
  if (a.dense.empty() || a.weights.empty())
    fail("--dense and --weights are required", 2);
  if (int(!a.promptFile.empty()) + int(!a.promptIds.empty()) + int(a.textGiven) > 1)
    fail("give one of --prompt, --prompt-ids, --prompt-text/--prompt-file", 2);
  if (a.textGiven && a.promptText.empty())
    fail("--prompt-text: empty prompt", 2);
  if (a.sparseGreedy && a.sparse.empty())
    fail("--sparse-greedy needs --sparse", 2);
  return a;
}

/// A byte-level model's vocabulary: token t is byte t.
constexpr int64_t kByteVocab = 256;

/// Bytes as text, with control bytes and bytes >= 0x7f escaped (\xNN),
/// newlines as \n: one terminal line, valid UTF-8 in the JSON.
std::string printable(const std::string &bytes) {
  std::string out;
  for (unsigned char c : bytes) {
    if (c == '\n')
      out += "\\n";
    else if (c == '\\')
      out += "\\\\";
    else if (c < 0x20 || c >= 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else
      out += char(c);
  }
  return out;
}

int argmax(const Tensor &logits) {
  const float *p = logits.f32();
  return int(std::max_element(p, p + logits.numel()) - p);
}

double cosine(const Tensor &a, const Tensor &b) {
  double d = 0, x = 0, y = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    d += double(a.f32()[i]) * b.f32()[i];
    x += double(a.f32()[i]) * a.f32()[i];
    y += double(b.f32()[i]) * b.f32()[i];
  }
  return d / std::sqrt(x * y);
}

struct Run {
  std::string name;
  double prefillSeconds = 0, decodeSeconds = 0;
  size_t arenaBytes = 0, valueBytes = 0, separateBytes = 0, cacheBytes = 0;
  int hits = 0, misses = 0, fallbacks = 0;
  int64_t selectedKeys = 0, selectionRows = 0; ///< Session::selectedKeys
  std::vector<Tensor> logits; ///< decode steps' logits (index 0: prefill's)
  std::vector<int> tokens;    ///< greedy tokens (dense) or its own top-1
  std::vector<int> fed;       ///< decode inputs
};

double mib(size_t b) { return double(b) / (1 << 20); }

/// Prefill + decode on one build. `feed`: the tokens to decode from (the
/// dense run's); empty: greedy on its own output.
Run runBuild(const std::string &name, const std::string &so, const Args &a,
             const std::vector<int32_t> &prompt, const std::vector<int> &feed) {
  Run r;
  r.name = name;
  std::printf("[%s] loading %s\n", name.c_str(), so.c_str());
  std::fflush(stdout);
  auto model = Model::load(so, a.weights, a.threads, a.device);
  SessionOptions so2;
  so2.capacity = a.capacity > 0 ? a.capacity : int64_t(prompt.size()) + a.decode;
  so2.theta = a.theta;
  so2.selectionCache = a.selectionCache;
  so2.kvOffload = a.kvOffload;
  int64_t chunk = a.chunk > 0 ? a.chunk : int64_t(prompt.size());
  // The prefill call of the prompt's chunk from `at`.
  auto prefillChunk = [&](Session &session, int64_t at, StepStats *st) {
    int64_t n = std::min<int64_t>(chunk, int64_t(prompt.size()) - at);
    return session.prefill(std::vector<int32_t>(prompt.begin() + at, prompt.begin() + at + n),
                           at, st, int64_t(prompt.size()) - (at + n));
  };
  if (a.warmup) {
    // The same calls as the timed run below (the same row counts pick the
    // same kernel variants), in a session that is then dropped.
    std::printf("[%s] warm-up (not timed) ...\n", name.c_str());
    std::fflush(stdout);
    Session w(model, so2);
    for (int64_t at = 0; at < int64_t(prompt.size()); at += chunk)
      prefillChunk(w, at, nullptr);
    for (int64_t t = 0; t < std::min<int64_t>(a.decode, 2); ++t)
      w.decode(feed.empty() ? prompt.back() : feed.at(size_t(t)));
  }
  Session s(model, so2);
  r.cacheBytes = s.cacheBytes();
  Tensor logits;
  for (int64_t at = 0; at < int64_t(prompt.size()); at += chunk) {
    int64_t n = std::min<int64_t>(chunk, int64_t(prompt.size()) - at);
    std::printf("[%s] prefill tokens %lld..%lld of %zu ...\n", name.c_str(),
                (long long)at, (long long)(at + n - 1), prompt.size());
    std::fflush(stdout);
    StepStats st;
    st.timeEachKernel = a.profile;
    logits = prefillChunk(s, at, &st);
    r.prefillSeconds += st.seconds;
    r.arenaBytes = std::max(r.arenaBytes, st.arenaBytes);
    r.valueBytes = std::max(r.valueBytes, st.valueBytes);
    r.separateBytes = std::max(r.separateBytes, st.separateBytes);
    if (a.profile) {
      const EntryInfo &e = model->module().entry("prefill");
      std::map<std::string, std::string> where;
      for (const KernelInfo &k : e.kernels)
        where[k.name] = k.loc;
      std::sort(st.profile.begin(), st.profile.end(),
                [](const KernelTiming &x, const KernelTiming &y) { return x.seconds > y.seconds; });
      for (size_t i = 0; i < st.profile.size() && i < 12; ++i)
        std::printf("[%s]   %8.1f ms  %-16s %-24s %s\n", name.c_str(),
                    1e3 * st.profile[i].seconds, st.profile[i].kind.c_str(),
                    st.profile[i].kernel.c_str(), where[st.profile[i].kernel].c_str());
    }
  }
  std::printf("[%s] prefill: %.2f s, %.0f tokens/s\n", name.c_str(), r.prefillSeconds,
              double(prompt.size()) / r.prefillSeconds);
  r.logits.push_back(logits);
  int next = argmax(logits);
  r.tokens.push_back(next);
  std::map<std::string, double> decodeByKind; // --profile: kernel time per kind
  for (int64_t t = 0; t < a.decode; ++t) {
    int in = feed.empty() ? next : feed.at(size_t(t));
    r.fed.push_back(in);
    StepStats st;
    st.timeEachKernel = a.profile;
    logits = s.decode(in, &st);
    r.decodeSeconds += st.seconds;
    for (const KernelTiming &k : st.profile)
      decodeByKind[k.kind] += k.seconds;
    r.logits.push_back(logits);
    next = argmax(logits);
    r.tokens.push_back(next);
    std::printf("\r[%s] decode %lld/%lld  %.1f ms/token  selection cache %d hit / %d miss",
                name.c_str(), (long long)(t + 1), (long long)a.decode,
                1e3 * r.decodeSeconds / double(t + 1), s.selectHits(), s.selectMisses());
    std::fflush(stdout);
  }
  if (a.decode > 0)
    std::printf("\n");
  if (a.profile && a.decode > 0) {
    // Kernel time summed over the kernels of each kind (concurrent kernels
    // overlap, so the sum may exceed the step time).
    std::printf("[%s] decode kernels, ms per token by kind:", name.c_str());
    for (const auto &[kind, sec] : decodeByKind)
      std::printf("  %s %.2f", kind.c_str(), 1e3 * sec / double(a.decode));
    std::printf("\n");
  }
  r.hits = s.selectHits();
  r.misses = s.selectMisses();
  r.fallbacks = s.denseFallbacks();
  r.selectedKeys = s.selectedKeys();
  r.selectionRows = s.selectionRows();
  if (r.selectionRows)
    std::printf("[%s] selection: %.1f keys per chunk and head on average (%lld selections), "
                "besides sinks and window\n",
                name.c_str(), double(r.selectedKeys) / double(r.selectionRows),
                (long long)r.selectionRows);
  return r;
}

/// The prompt and the decoded tokens must fit the KV cache (--capacity)
/// and, for a Hugging Face checkpoint directory, the model's
/// max_position_embeddings (config.json), unless --capacity says otherwise
/// (as llama.cpp's -c does): checked before anything runs.
void checkPositions(const Args &a, int64_t promptLen) {
  const int64_t need = promptLen + a.decode;
  auto what = [&] {
    return "the prompt (" + std::to_string(promptLen) + " tokens) and --decode " +
           std::to_string(a.decode) + " need " + std::to_string(need) + " positions";
  };
  if (a.capacity > 0) {
    if (need > a.capacity)
      fail(what() + ", more than --capacity " + std::to_string(a.capacity), 2);
    return;
  }
  std::filesystem::path config = std::filesystem::path(a.weights) / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_directory(a.weights, ec) || !std::filesystem::exists(config, ec))
    return;
  std::ifstream in(config);
  nlohmann::json c = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (!c.is_object() || !c.contains("max_position_embeddings") ||
      !c["max_position_embeddings"].is_number_integer())
    return;
  int64_t max = c["max_position_embeddings"].get<int64_t>();
  if (need > max)
    fail(what() + ", more than max_position_embeddings " + std::to_string(max) + " in " +
             config.string() + " (give --capacity to run past it)",
         2);
}

} // namespace

int runGenerate(const std::vector<std::string> &argv) {
  Args a = parseArgs(argv);
  try {
    std::vector<int32_t> prompt;
    if (!a.promptFile.empty()) {
      Tensor p = readNpy(a.promptFile);
      if (p.dtype() != DType::Int32)
        fail(a.promptFile + ": the prompt must be int32 tokens, is " +
             dtypeName(p.dtype()));
      prompt.assign(p.i32(), p.i32() + p.numel());
      if (prompt.empty())
        fail(a.promptFile + ": empty prompt");
    } else if (!a.promptIds.empty()) {
      std::stringstream ss(a.promptIds);
      std::string item;
      while (std::getline(ss, item, ',')) {
        auto id = parseInteger(item, 0, (1LL << 31) - 1);
        if (!id)
          fail("--prompt-ids: '" + item + "' is not a token id (a non-negative integer)", 2);
        prompt.push_back(int32_t(*id));
      }
      if (prompt.empty())
        fail("--prompt-ids: empty prompt", 2);
    } else if (a.textGiven) {
      auto probe = Model::load(a.dense, a.weights, 1);
      if (probe->vocab() != kByteVocab)
        fail("--prompt-text needs a byte-level model (a vocabulary of 256); " + a.dense +
             " has " + std::to_string(probe->vocab()) +
             " tokens: give its tokenizer's ids with --prompt or --prompt-ids");
      for (unsigned char c : a.promptText)
        prompt.push_back(int32_t(c));
    } else {
      // Vocabulary from the module: any token id below it.
      auto probe = Model::load(a.dense, a.weights, 1);
      std::mt19937_64 rng(a.seed);
      std::uniform_int_distribution<int32_t> tok(0, int32_t(probe->vocab() - 1));
      prompt.resize(size_t(a.promptLen));
      for (int32_t &t : prompt)
        t = tok(rng);
    }
    checkPositions(a, int64_t(prompt.size()));
    std::printf("prompt: %zu tokens; decode %lld tokens greedily\n", prompt.size(),
                (long long)a.decode);
    Run dense = runBuild("dense", a.dense, a, prompt, {});
    std::vector<Run> runs = {dense};
    if (!a.sparse.empty()) {
      std::vector<int> feed;
      if (!a.sparseGreedy)
        feed.assign(dense.tokens.begin(), dense.tokens.end() - 1);
      runs.push_back(runBuild("sparse", a.sparse, a, prompt, feed));
    }

    nlohmann::ordered_json j = {{"prompt_tokens", prompt.size()}, {"decode_tokens", a.decode},
                                {"theta", a.theta}, {"sparse_greedy", a.sparseGreedy}};
    nlohmann::ordered_json generated = nlohmann::ordered_json::object();
    for (const Run &r : runs) {
      std::string ids;
      for (int t : r.tokens)
        ids += (ids.empty() ? "" : ",") + std::to_string(t);
      std::printf("[%s] generated ids: %s\n", r.name.c_str(), ids.c_str());
      generated[r.name] = {{"ids", r.tokens}};
      if (r.logits[0].numel() == kByteVocab) {
        std::string text(r.tokens.begin(), r.tokens.end());
        std::printf("[%s] generated text: %s\n", r.name.c_str(), printable(text).c_str());
        generated[r.name]["text"] = printable(text);
      }
    }
    j["generated"] = generated;
    if (runs.size() == 2 && a.decode > 0) {
      const Run &s = runs[1];
      std::printf("\nstep  dense  sparse  agree  logits-cos%s\n",
                  a.sparseGreedy ? "   (--sparse-greedy: each build on its own tokens, so the "
                                   "contexts differ after the first disagreement)"
                                 : "");
      int agree = 0;
      nlohmann::ordered_json steps = nlohmann::ordered_json::array();
      for (size_t t = 0; t < dense.tokens.size(); ++t) {
        bool same = dense.tokens[t] == s.tokens[t];
        agree += same;
        double c = cosine(dense.logits[t], s.logits[t]);
        std::printf("%4zu  %5d  %6d  %5s  %.6f\n", t, dense.tokens[t], s.tokens[t],
                    same ? "yes" : "NO", c);
        steps.push_back({{"step", t}, {"dense", dense.tokens[t]}, {"sparse", s.tokens[t]},
                         {"cosine", c}});
      }
      j["steps"] = steps;
      j["top1_agreement"] = double(agree) / double(dense.tokens.size());
      std::printf("top-1 agreement: %d/%zu = %.1f%% (step 0 is the prefill's last token)\n",
                  agree, dense.tokens.size(), 100.0 * agree / double(dense.tokens.size()));
    }
    std::printf("\n%-7s %12s %14s %12s %14s %12s %9s %16s %14s %12s\n", "build",
                "prefill s", "prefill tok/s", "decode ms", "decode tok/s", "sel. hits",
                "dense fb", "temps planned", "one-per-value", "KV cache");
    nlohmann::ordered_json jr = nlohmann::ordered_json::array();
    for (const Run &r : runs) {
      double dps = a.decode > 0 ? double(a.decode) / r.decodeSeconds : 0;
      int sel = r.hits + r.misses;
      char hit[32];
      std::snprintf(hit, sizeof hit, sel ? "%.0f%%" : "-", sel ? 100.0 * r.hits / sel : 0.0);
      std::printf("%-7s %12.2f %14.0f %12.2f %14.2f %12s %9d %12.0f MiB %10.0f MiB %8.0f MiB\n",
                  r.name.c_str(), r.prefillSeconds,
                  double(prompt.size()) / r.prefillSeconds,
                  a.decode > 0 ? 1e3 * r.decodeSeconds / double(a.decode) : 0.0, dps, hit,
                  r.fallbacks, mib(r.arenaBytes), mib(r.valueBytes), mib(r.cacheBytes));
      jr.push_back({{"build", r.name},
                    {"prefill_s", r.prefillSeconds},
                    {"prefill_tok_s", double(prompt.size()) / r.prefillSeconds},
                    {"decode_s", r.decodeSeconds},
                    {"decode_tok_s", dps},
                    {"selection_hits", r.hits},
                    {"selection_misses", r.misses},
                    {"dense_fallbacks", r.fallbacks},
                    {"mean_selected_keys", r.selectionRows ? nlohmann::ordered_json(
                         double(r.selectedKeys) / double(r.selectionRows)) : nullptr},
                    {"temporaries_planned_bytes", r.arenaBytes},
                    {"temporaries_separate_bytes", r.separateBytes},
                    {"one_buffer_per_value_bytes", r.valueBytes},
                    {"kv_cache_bytes", r.cacheBytes}});
    }
    j["builds"] = jr;
    j["warmup"] = a.warmup; // timings leave out first use
    j["kv_offload"] = a.kvOffload;
    if (!a.dumpDir.empty()) {
      std::filesystem::create_directories(a.dumpDir);
      nlohmann::ordered_json dumps = nlohmann::ordered_json::object();
      for (const Run &r : runs) {
        int64_t vocab = r.logits[0].numel();
        Tensor all({int64_t(r.logits.size()), vocab});
        for (size_t t = 0; t < r.logits.size(); ++t)
          std::copy(r.logits[t].f32(), r.logits[t].f32() + vocab,
                    all.f32() + int64_t(t) * vocab);
        std::string path = a.dumpDir + "/" + r.name + ".logits.npy";
        writeNpy(path, all);
        std::vector<int> toks(prompt.begin(), prompt.end());
        toks.insert(toks.end(), r.fed.begin(), r.fed.end());
        dumps[r.name] = {{"tokens", toks}, {"logits", path}};
      }
      j["dumps"] = dumps;
    }
    if (runs.size() == 2) {
      double pf = runs[0].prefillSeconds / runs[1].prefillSeconds;
      double dc = a.decode > 0 ? runs[0].decodeSeconds / runs[1].decodeSeconds : 0;
      std::printf("sparse vs dense: prefill %.2fx, decode %.2fx\n", pf, dc);
      j["prefill_speedup"] = pf;
      j["decode_speedup"] = dc;
    }
    for (const Run &r : runs)
      if (r.valueBytes)
        std::printf("%s: planned temporaries %.0f MiB vs one buffer per value %.0f MiB "
                    "(%.0f%% less)\n",
                    r.name.c_str(), mib(r.arenaBytes), mib(r.valueBytes),
                    100.0 * (1.0 - double(r.arenaBytes) / double(r.valueBytes)));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    std::printf("peak resident memory of this process: %.0f MiB (weights are mapped)\n",
                double(ru.ru_maxrss) / 1024.0);
    j["max_rss_bytes"] = int64_t(ru.ru_maxrss) * 1024;
    if (!a.json.empty()) {
      std::string tmp = a.json + ".tmp";
      {
        std::ofstream out(tmp);
        out << j.dump(2) << "\n";
        if (!out)
          fail("cannot write " + a.json);
      }
      std::rename(tmp.c_str(), a.json.c_str());
    }
  } catch (const std::exception &e) {
    fail(e.what());
  }
  return 0;
}

} // namespace deltaflow::rt
