//===- Passes.h - deltaflow passes ------------------------------*- C++ -*-===//
#ifndef DELTAFLOW_TRANSFORMS_PASSES_H
#define DELTAFLOW_TRANSFORMS_PASSES_H

#include "mlir/Pass/Pass.h"

#include <string>
#include <vector>

namespace mlir {
class DialectRegistry;
namespace deltaflow {

#define GEN_PASS_DECL
#include "deltaflow/Transforms/Passes.h.inc"

/// registerDeltaflowPasses(): every deltaflow pass, into the global registry.
#define GEN_PASS_REGISTRATION
#include "deltaflow/Transforms/Passes.h.inc"

/// Registers the dialects deltaflow tools accept: func, arith, tensor, tosa
/// and attn.
void registerDeltaflowDialects(DialectRegistry &registry);

/// Takes every `--load-pass-plugin=PATH` / `--load-pass-plugin PATH` out of
/// argv and loads those MLIR pass plug-ins (which register sparsity
/// policies), so a tool knows them before it parses its options. False with
/// a one-line `error` on the first failure or duplicate policy name.
bool loadPluginArguments(int &argc, char **argv, std::string &error);

/// Checks that the quotes and brackets of a pass-option string (what goes
/// between a pass's `{...}`, or a whole pipeline when `pipeline`) are closed
/// and matched, and that no space sits inside a `(` or `[` of option text
/// (option values are cut at spaces outside braces and quotes), and that
/// the inside of a value wrapped in braces (`NAME={...}`, whose braces MLIR
/// drops before it scans the value) passes the same checks. MLIR 19's
/// pass-option parser does not return (or overflows its stack) on an
/// unclosed `(`, `[`, `"` or `'` inside a list option's value (found by
/// test/fuzz's pass-options target), so the tools refuse such text first.
/// "" when fine, else one line: what and at which column (1-based).
std::string unbalancedOptionText(const std::string &text, bool pipeline = false);

/// MLIR 19's parser recurses once per level of brackets ('(', '[', '{',
/// '<') and overflows its stack on deep enough text (found by the
/// attn-mlir fuzz target: some thousands of '['). "" when `text` nests at
/// most kMaxMlirNesting levels, else one located line
/// "NAME:LINE:COL: error: ..." at the first bracket past the limit.
/// String literals and // comments are skipped.
constexpr unsigned kMaxMlirNesting = 256;
std::string tooDeeplyNestedText(llvm::StringRef text, llvm::StringRef name);

/// tooDeeplyNestedText() over the input files among argv's positional
/// arguments (deltaflow-opt's input; standard input is not checked).
bool checkInputNesting(int argc, char **argv, std::string &error);

/// unbalancedOptionText() over every pass option and pipeline in argv
/// (`--NAME=` of a registered pass or pipeline, `--pass-pipeline`, `-p`;
/// call it after registering the passes); false with a one-line `error`
/// naming the argument.
bool checkPassArguments(int argc, char **argv, std::string &error);

/// Adds the in-tree policies (passes/lib/Policies/Builtin.cpp: window,
/// token-select, adaptive, block-topk, strided) to the policy registry
/// (SparsityPolicy.h). Idempotent; the tools and the sparsify pass call it.
void registerBuiltinSparsityPolicies();

} // namespace deltaflow
} // namespace mlir

#endif // DELTAFLOW_TRANSFORMS_PASSES_H
