//===- Targets.h - targets as a table of one-file registrations -*- C++ -*-===//
//
// A target family (x86-64, arm64, gpu) is one file under compiler/schedules/
// that registers, through registerTargetFamily():
//   - its target names (what --target takes) with the Halide target string
//     and the linker of each,
//   - its tile parameters: typed, bounded, with a default per Halide target;
//     deltaflow-compile --tile NAME=VALUE overrides them (validated here) and
//     deltaflow-bench dense --sweep sweeps them,
//   - its schedule hooks (tiles, prefill, decode, Δ, graph matmuls).
// Adding a target is that file plus one line in registerBuiltinTargets()
// (compiler/schedules/Targets.cpp). deltaflow-compile --help lists the table.
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_COMPILER_TARGETS_H
#define DELTAFLOW_COMPILER_TARGETS_H

#include "deltaflow/Compiler/AttentionPipeline.h"
#include "deltaflow/Compiler/ModuleEmitter.h"

#include <deque>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace deltaflow::compiler {

struct CpuRegisterTiles;
struct MatmulTiles;
struct GraphPipeline;
struct CandidateScores;
struct HeadSoftmax;
struct SelectionBuild;

/// How the stages every selection kernel shares are scheduled
/// (compiler/include/deltaflow/Compiler/SelectionKernel.h).
struct SelectionSchedules {
  std::function<void(CandidateScores &, const SelectionBuild &)> scores;
  std::function<void(HeadSoftmax &, CandidateScores &, const SelectionBuild &)>
      headSoftmax;
  std::function<void(Halide::Func, const Halide::Var &,
                     const std::vector<Halide::RVar> &, const Halide::Target &)>
      overCandidates;
};

/// One tile size of a target family.
struct TileParam {
  std::string name; ///< e.g. "prefill.query-tile"
  std::string help; ///< what it is and its default(s), for --help
  int lo = 1, hi = 1 << 20; ///< accepted range of --tile values
};

/// A name --target accepts.
struct TargetName {
  std::string name;    ///< "x86-64-avx2"
  std::string halide;  ///< Halide target string; empty: the host's
  std::string linker;  ///< links the shared library
  std::string summary; ///< one line for --help
};

struct TargetFamily {
  std::string name; ///< "x86-64", "arm64", "gpu"
  std::vector<TargetName> targets;
  std::vector<TileParam> tiles;
  /// Whether a Halide target belongs to this family (the first family that
  /// claims it schedules it; "host" resolves to the machine's own target).
  std::function<bool(const Halide::Target &)> claims;
  // Schedule hooks. Tile sizes read tile(); see Schedule.h for meanings.
  std::function<PrefillTiles(const Halide::Target &, const AttentionSpec &)> prefillTiles;
  std::function<DecodeTiles(const Halide::Target &, const AttentionSpec &)> decodeTiles;
  std::function<void(PrefillPipeline &, const AttentionSpec &, const Halide::Target &)>
      schedulePrefill;
  std::function<void(DecodePipeline &, const AttentionSpec &, const Halide::Target &)>
      scheduleDecode;
  std::function<void(DeltaPipeline &, int64_t dv, const Halide::Target &)> scheduleDelta;
  /// Graph (TOSA) matmul tiles of the CPU graph schedule (schedules/
  /// GraphCpu.cpp); unset, with scheduleGraph unset too: the family has no
  /// graph schedule.
  std::function<MatmulTiles(const Halide::Target &)> matmulTiles;
  /// A graph schedule of the family's own (GPUs: schedules/GraphGpu.cpp),
  /// used instead of the CPU one, and the row limit of its small-rows
  /// variant (-1: none), both set or both unset.
  std::function<void(GraphPipeline &, const Halide::Target &, bool smallRows)> scheduleGraph;
  std::function<int(const GraphPipeline &, const Halide::Target &)> graphSmallRowsLimit;
  /// The selection kernels' shared stages.
  SelectionSchedules selection;
  /// Whether sparse attention gets a one-row (decode) variant.
  bool sparseDecode = true;
  /// Widen stored f16 with the integer form (Float16.h) rather than a cast.
  bool bitWidenF16 = true;
};

/// Adds a family and its names; throws on a duplicate name.
void registerTargetFamily(TargetFamily family);
/// The built-in families, one line each (compiler/schedules/Targets.cpp).
void registerBuiltinTargets();
/// Every family, in registration order (registers the built-ins first).
const std::deque<TargetFamily> &targetFamilies();
/// The name's entry; throws "unknown --target 'x' (known: ...)".
const TargetName &targetNamed(const std::string &name);
/// The Halide target of a --target name.
Halide::Target halideTargetOf(const std::string &name);
/// The family that schedules `t`; throws naming `t` if none does.
const TargetFamily &familyOf(const Halide::Target &t);
/// "host, x86-64-avx2, ...".
std::string knownTargets();

/// The value of tile `name` for `t`: the --tile override in force, else
/// `byDefault` (the family's choice for this target and shape). Throws for a
/// name the family does not declare.
int tile(const Halide::Target &t, const std::string &name, int byDefault);

/// --tile overrides for the compiles in its lifetime (one thread). The
/// constructor checks every name against the family of `t` and every value
/// against its bounds, and throws one line naming the first bad one.
class TileOverrides {
public:
  TileOverrides(const Halide::Target &t, const std::map<std::string, int> &values);
  ~TileOverrides();
  TileOverrides(const TileOverrides &) = delete;
  TileOverrides &operator=(const TileOverrides &) = delete;

private:
  const std::map<std::string, int> *previous_;
  std::map<std::string, int> values_;
};

/// What an x86-64 or arm64 family chooses; the CPU schedules (Cpu.cpp) do
/// the rest. Each function gives a tile's default for a Halide target.
struct CpuTileDefaults {
  bool arm64 = false; ///< for --help's description of the defaults
  std::function<int(const Halide::Target &)> queryTile, keysPerTile, pvRows,
      matmulTileRows, matmulRowBlock; ///< matmulRowBlock: rows per B panel
  int matmulTileWVectors = 2; ///< graph matmul register tile width, vectors
  int matmulSmallWVectors = 4; ///< columns per decode task, vectors
};
/// A CPU family over the shared CPU schedules with these defaults; the
/// caller sets name, targets and claims.
TargetFamily cpuTargetFamily(const CpuTileDefaults &defaults);


} // namespace deltaflow::compiler

#endif // DELTAFLOW_COMPILER_TARGETS_H
