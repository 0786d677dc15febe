//===- AttnMlirFuzzer.cpp - MLIR parsing and verification of attn ops -----===//
//
// Input: MLIR text, parsed and verified with the dialects deltaflow-opt and
// deltaflow-compile register (func, arith, tensor, tosa, attn): the attn
// ops' and attributes' custom parsers, the policy attributes, and every
// verifier. An accepted module is printed (custom and generic form) and the
// custom form must parse back: a printer the parser does not accept is a
// bug. Diagnostics are dropped; a rejection is a failed parse.
//
//===----------------------------------------------------------------------===//

#include "FuzzCommon.h"

#include "deltaflow/Transforms/Passes.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/raw_ostream.h"

#include <memory>

using namespace mlir;

namespace {
/// One context for many inputs (a fresh one now and then: uniqued types and
/// attributes accumulate), single-threaded as the tools run under a fuzzer.
MLIRContext &context() {
  static DialectRegistry registry = [] {
    // As the tools: the built-in policies are in the registry the policy
    // attributes' verifiers check their parameters against
    // (loadPluginArguments registers them; without them nothing is checked).
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
  // The parser reads its buffer up to a terminating NUL (as a file's
  // MemoryBuffer has): a std::string provides it.
  const std::string text(reinterpret_cast<const char *>(data), size);
  // The tools refuse text nested past MLIR's parser's stack first (it
  // recurses per bracket level: thousands of '[' overflowed it).
  if (!mlir::deltaflow::tooDeeplyNestedText(text, "input").empty())
    return 0;
  ParserConfig config(&ctx);
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(text, config);
  if (!module)
    return 0;
  FUZZ_CHECK(succeeded(verify(*module)));

  std::string custom, generic;
  {
    llvm::raw_string_ostream os(custom);
    module->print(os);
  }
  {
    llvm::raw_string_ostream os(generic);
    module->print(os, OpPrintingFlags().printGenericOpForm());
  }
  OwningOpRef<ModuleOp> again = parseSourceString<ModuleOp>(custom, config);
  if (!again) {
    std::fprintf(stderr, "the printed module does not parse back:\n%s\n",
                 custom.c_str());
    FUZZ_CHECK(!"round trip through the printer");
  }
  return 0;
}
