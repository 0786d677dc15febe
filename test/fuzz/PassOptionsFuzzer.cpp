//===- PassOptionsFuzzer.cpp - the sparsity passes' option strings --------===//
//
// Input: "SPARSIFY[\nDELTA[\nINLINE]]", the text of deltaflow-compile's
// --sparsity and (after the first newline, if any) --delta, and (after a
// second) the options of upstream's inline pass, whose op-pipelines= and
// default-pipeline= values are pipelines parsed later (deltaflow-opt
// registers it). The pipeline is built and
// parsed exactly as deltaflow-compile does ("attn-raise,attn-sparsify{...},
// attn-delta-correct{...},canonicalize,cse", with the in-tree policies
// registered), and an accepted pipeline runs over a small module of causal,
// non-causal, static, dynamic, decode and LSE attention, where the passes
// check the policy, its parameters and bounds and build the ops (verified
// after each pass). Errors are rejections; diagnostics are dropped.
//
//===----------------------------------------------------------------------===//

#include "FuzzCommon.h"

#include "deltaflow/Transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>

using namespace mlir;

namespace {
const char kModule[] = R"mlir(
func.func @prefill(%q: tensor<1x8x?x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> tensor<1x8x?x64xf32> {
  %o = attn.attention %q, %k, %v causal : tensor<1x8x?x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o : tensor<1x8x?x64xf32>
}
func.func @attributes(%q: tensor<1x8x70x64xf32>, %k: tensor<1x2x?x64xf32>, %v: tensor<1x2x?x64xf32>) -> (tensor<1x8x70x64xf32>, tensor<1x8x70xf32>) {
  %o, %l = attn.attention %q, %k, %v scale(0.1) causal offset(100) lse : tensor<1x8x70x64xf32>, tensor<1x2x?x64xf32>, tensor<1x2x?x64xf32>
  return %o, %l : tensor<1x8x70x64xf32>, tensor<1x8x70xf32>
}
func.func @decode(%q: tensor<1x4x1x16xf32>, %k: tensor<1x4x4096x16xf16>, %v: tensor<1x4x4096x16xf16>) -> tensor<1x4x1x16xf32> {
  %o = attn.attention %q, %k, %v causal : tensor<1x4x1x16xf32>, tensor<1x4x4096x16xf16>, tensor<1x4x4096x16xf16>
  return %o : tensor<1x4x1x16xf32>
}
func.func @short(%q: tensor<1x4x8x16xf32>, %k: tensor<1x4x8x16xf32>, %v: tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %o = attn.attention %q, %k, %v causal : tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>, tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}
func.func @bidirectional(%q: tensor<1x4x?x16xf32>, %k: tensor<1x4x?x16xf32>, %v: tensor<1x4x?x16xf32>) -> tensor<1x4x?x16xf32> {
  %o = attn.attention %q, %k, %v : tensor<1x4x?x16xf32>, tensor<1x4x?x16xf32>, tensor<1x4x?x16xf32>
  return %o : tensor<1x4x?x16xf32>
}
)mlir";

/// One context for many inputs (a fresh one now and then: the policy
/// attributes of every option string tried accumulate in it).
MLIRContext &context() {
  static DialectRegistry registry = [] {
    // As deltaflow-compile's main().
    mlir::deltaflow::registerDeltaflowPasses();
    registerCanonicalizerPass();
    registerCSEPass();
    registerInlinerPass();
    mlir::deltaflow::registerBuiltinSparsityPolicies();
    DialectRegistry r;
    mlir::deltaflow::registerDeltaflowDialects(r);
    return r;
  }();
  static std::unique_ptr<MLIRContext> ctx;
  static unsigned uses = 0;
  if (!ctx || ++uses % 4096 == 0) {
    ctx = std::make_unique<MLIRContext>(registry,
                                        MLIRContext::Threading::DISABLED);
    ctx->loadAllAvailableDialects();
  }
  return *ctx;
}
} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  MLIRContext &ctx = context();
  ScopedDiagnosticHandler quiet(&ctx, [](Diagnostic &) { return success(); });

  std::string text(reinterpret_cast<const char *>(data), size);
  // A command-line argument cannot hold a NUL.
  if (text.find('\0') != std::string::npos)
    return 0;
  std::string sparsity = text, delta, inliner;
  bool withDelta = false, withInline = false;
  if (size_t nl = text.find('\n'); nl != std::string::npos) {
    sparsity = text.substr(0, nl);
    delta = text.substr(nl + 1);
    withDelta = true;
    if (size_t nl2 = delta.find('\n'); nl2 != std::string::npos) {
      inliner = delta.substr(nl2 + 1);
      delta.resize(nl2);
      withInline = true;
    }
  }
  // deltaflow-compile refuses an unclosed or unmatched range first (MLIR 19's
  // pass-option parser loops forever on one inside a list option: its
  // findChar index wraps from npos to 0); so does this target.
  if (!mlir::deltaflow::unbalancedOptionText(sparsity).empty() ||
      !mlir::deltaflow::unbalancedOptionText(delta).empty() ||
      !mlir::deltaflow::unbalancedOptionText(inliner).empty())
    return 0;
  std::string pipeline = "attn-raise,attn-sparsify{" + sparsity + "},";
  if (withDelta)
    pipeline += "attn-delta-correct{" + delta + "},";
  if (withInline)
    pipeline += "inline{" + inliner + "},";
  pipeline += "canonicalize,cse";
  // ... and the pipeline they make, as MLIR cuts it (braces inside quotes
  // count there: "entries=x'{'" then "x=y'}'" hung before this check).
  if (!mlir::deltaflow::unbalancedOptionText(pipeline, /*pipeline=*/true).empty())
    return 0;

  PassManager pm(&ctx);
  std::string errors;
  llvm::raw_string_ostream os(errors);
  if (failed(parsePassPipeline(pipeline, pm, os)))
    return 0;

  OwningOpRef<ModuleOp> module =
      parseSourceString<ModuleOp>(kModule, ParserConfig(&ctx));
  FUZZ_CHECK(module);
  (void)pm.run(*module); // a bad option is a failed run, with its diagnostic
  return 0;
}
