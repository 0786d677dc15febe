//===- Targets.cpp - the target table and --tile overrides ----------------===//

#include "deltaflow/Compiler/Targets.h"
#include "deltaflow/Compiler/ModuleEmitter.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <cerrno>
#include <deque>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

namespace deltaflow::compiler {

// One line per built-in target family: the family's own file defines it.
void registerX86Targets();   // schedules/x86.cpp
void registerArm64Targets(); // schedules/arm64.cpp
void registerGpuTargets();   // schedules/cuda.cpp

namespace {
/// A deque: references to registered families stay valid.
std::deque<TargetFamily> &table() {
  static std::deque<TargetFamily> families;
  return families;
}
std::once_flag builtinsOnce;
thread_local const std::map<std::string, int> *activeOverrides = nullptr;
} // namespace

void registerBuiltinTargets() {
  std::call_once(builtinsOnce, [] {
    registerX86Targets();
    registerArm64Targets();
    registerGpuTargets();
  });
}

void registerTargetFamily(TargetFamily family) {
  for (const TargetFamily &f : table())
    for (const TargetName &a : f.targets)
      for (const TargetName &b : family.targets)
        if (a.name == b.name)
          throw std::runtime_error("target '" + b.name + "' registered twice");
  table().push_back(std::move(family));
}

const std::deque<TargetFamily> &targetFamilies() {
  registerBuiltinTargets();
  return table();
}

std::string knownTargets() {
  std::string s = "host";
  for (const TargetFamily &f : targetFamilies())
    for (const TargetName &t : f.targets)
      s += ", " + t.name;
  return s;
}

const TargetName &targetNamed(const std::string &name) {
  static const TargetName host{"host", "", "c++",
                               "this machine's CPU with all its features"};
  if (name == "host")
    return host;
  for (const TargetFamily &f : targetFamilies())
    for (const TargetName &t : f.targets)
      if (t.name == name)
        return t;
  throw std::runtime_error("unknown --target '" + name + "' (known: " +
                           knownTargets() + ")");
}

/// This machine's target as Halide 14 detects it, less what it gets wrong:
/// Halide names every CPU with AVX512-BF16 "sapphirerapids", and LLVM's
/// sapphirerapids CPU model brings AVX512-FP16 (vmovw, ...), which AMD's
/// Zen 4/5 lack (SIGILL). The feature is kept only where CPUID leaf 7
/// reports AVX512-FP16 (EDX bit 23; Intel SDM vol. 2, CPUID).
static Halide::Target hostTarget() {
  Halide::Target t = Halide::get_host_target();
#if defined(__x86_64__)
  if (t.has_feature(Halide::Target::AVX512_SapphireRapids)) {
    unsigned a = 0, b = 0, c = 0, d = 0;
    bool fp16 = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d & (1u << 23));
    if (!fp16)
      t = t.without_feature(Halide::Target::AVX512_SapphireRapids);
  }
#endif
  return t;
}

Halide::Target halideTargetOf(const std::string &name) {
  const TargetName &t = targetNamed(name);
  return t.halide.empty() ? hostTarget() : Halide::Target(t.halide);
}

const TargetFamily &familyOf(const Halide::Target &t) {
  for (const TargetFamily &f : targetFamilies())
    if (f.claims(t))
      return f;
  std::string families;
  for (const TargetFamily &f : targetFamilies())
    families += (families.empty() ? "" : ", ") + f.name;
  throw std::runtime_error("no schedule for target '" + t.to_string() +
                           "' (families: " + families + ")");
}

void checkTargetOptions(const std::string &target,
                        const std::map<std::string, int> &tiles) {
  TileOverrides check(halideTargetOf(target), tiles);
}

std::string targetHelp() {
  std::string s = "Targets (--target=NAME), from the target table:\n";
  auto line = [&](const TargetName &t) {
    s += "  " + t.name + std::string(t.name.size() < 16 ? 16 - t.name.size() : 1, ' ') +
         t.summary + "\n";
  };
  line(targetNamed("host"));
  for (const TargetFamily &f : targetFamilies())
    for (const TargetName &t : f.targets)
      line(t);
  s += "\nTiles (--tile NAME=VALUE, repeatable), per target family:\n";
  for (const TargetFamily &f : targetFamilies()) {
    s += "  " + f.name + ":\n";
    for (const TileParam &p : f.tiles)
      s += "    " + p.name + std::string(p.name.size() < 22 ? 22 - p.name.size() : 1, ' ') +
           "[" + std::to_string(p.lo) + ", " + std::to_string(p.hi) + "] " + p.help + "\n";
  }
  return s;
}

int tile(const Halide::Target &t, const std::string &name, int byDefault) {
  const TargetFamily &f = familyOf(t);
  for (const TileParam &p : f.tiles)
    if (p.name == name) {
      if (activeOverrides)
        if (auto it = activeOverrides->find(name); it != activeOverrides->end())
          return it->second;
      return byDefault;
    }
  throw std::logic_error("target family '" + f.name + "' declares no tile '" +
                         name + "'");
}

TileOverrides::TileOverrides(const Halide::Target &t,
                             const std::map<std::string, int> &values)
    : previous_(activeOverrides), values_(values) {
  const TargetFamily &f = familyOf(t);
  for (const auto &[name, v] : values_) {
    const TileParam *param = nullptr;
    for (const TileParam &p : f.tiles)
      if (p.name == name)
        param = &p;
    if (!param) {
      std::string known;
      for (const TileParam &p : f.tiles)
        known += (known.empty() ? "" : ", ") + p.name;
      throw std::runtime_error("--tile " + name + ": target family '" + f.name +
                               "' has no such tile (its tiles: " +
                               (known.empty() ? "none" : known) + ")");
    }
    if (v < param->lo || v > param->hi)
      throw std::runtime_error("--tile " + name + "=" + std::to_string(v) +
                               ": must be in [" + std::to_string(param->lo) +
                               ", " + std::to_string(param->hi) + "]");
  }
  activeOverrides = &values_;
}

TileOverrides::~TileOverrides() { activeOverrides = previous_; }

std::pair<std::string, int> parseTileAssignment(const std::string &s) {
  size_t eq = s.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == s.size())
    throw std::runtime_error("--tile expects NAME=VALUE, got '" + s + "'");
  std::string v = s.substr(eq + 1);
  errno = 0;
  char *end = nullptr;
  long n = std::strtol(v.c_str(), &end, 10);
  if (errno || *end || n < -(1L << 30) || n > (1L << 30))
    throw std::runtime_error("--tile " + s.substr(0, eq) + "='" + v +
                             "': a tile size must be an integer");
  return {s.substr(0, eq), int(n)};
}

} // namespace deltaflow::compiler
