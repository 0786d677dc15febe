//===- ModuleEmitter.h - AOT compile a ModuleDesc into a .so ----*- C++ -*-===//
//
// Halide-free interface: the deltaflow-compile driver (an MLIR translation
// unit) calls this; the implementation is the only place Halide.h is used to
// compile, link and describe a module.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_MODULEEMITTER_H
#define DELTAFLOW_COMPILER_MODULEEMITTER_H

#include "deltaflow/Compiler/KernelSpec.h"

#include <functional>
#include <map>
#include <utility>
#include <string>

namespace deltaflow::compiler {

enum class EmitKind { SharedLibrary, Object, HalideStmt };

struct EmitOptions {
  std::string outBase;    ///< OUT: writes OUT.so, OUT.h, OUT.manifest.json
  std::string targetName; ///< host | x86-64-avx2 | x86-64-avx512 | ...
  EmitKind kind = EmitKind::SharedLibrary;
  /// --tile overrides (name -> value), checked against the target's table.
  std::map<std::string, int> tiles;
  /// Called with (phase, seconds) when set; used by --timing.
  std::function<void(const std::string &, double)> onPhase;
};

/// The --help text listing every target with its tiles, from the target
/// table (Targets.h; no Halide types here).
std::string targetHelp();
/// Checks --target and the --tile overrides against the target table before
/// anything is compiled (also for --emit=mlir and plan); throws one line.
void checkTargetOptions(const std::string &target,
                        const std::map<std::string, int> &tiles);
/// Parses a --tile argument "NAME=VALUE"; throws one line on a bad form.
std::pair<std::string, int> parseTileAssignment(const std::string &s);

/// Compiles every kernel for options.targetName and writes OUT.so, OUT.h and
/// OUT.manifest.json (or what options.kind asks for). Throws
/// std::runtime_error with a one-line message on failure; leaves no partial
/// output file behind.
void emitModule(const ModuleDesc &module, const EmitOptions &options);

} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_MODULEEMITTER_H
