//===- Selection.h - shared pieces of the in-tree selection kernels -------===//
#ifndef DELTAFLOW_COMPILER_HALIDE_SELECTION_SELECTION_H
#define DELTAFLOW_COMPILER_HALIDE_SELECTION_SELECTION_H

#include "deltaflow/Compiler/SelectionKernel.h"

namespace deltaflow::compiler {

/// softmax over the candidates of a chunk, per query head; with `withKept`
/// the softmax also runs over the keys every query keeps (the sinks and the
/// chunk's local window), and `keptShare` is their part of the mass.
struct HeadSoftmax {
  Halide::RDom candidates; ///< what max and sum reduce over (first update)
  Halide::Func max, sum;
  Halide::Func prob; ///< (j, g, hk, c, b)
  Halide::Func keptScore, keptSum, keptShare; ///< withKept only
};
HeadSoftmax headSoftmax(SelectionBuild &sb, CandidateScores &cs,
                        bool withKept = false);
void scheduleHeadSoftmax(HeadSoftmax &hs, CandidateScores &cs,
                         const SelectionBuild &sb);

/// Root stage over candidates j: parallel over blocks of 1024, vectorised
/// over j; its update reduces over `rvars` inside each block. (GPU targets:
/// one thread per candidate.)
void scheduleOverCandidates(Halide::Func f, const Halide::Var &j,
                            const std::vector<Halide::RVar> &rvars,
                            const Halide::Target &t);

void buildTokenSelectKernel(SelectionBuild &sb);
void buildAdaptiveKernel(SelectionBuild &sb);
void buildBlockTopKKernel(SelectionBuild &sb);

} // namespace deltaflow::compiler

#endif
