//===- deltaflow-opt.cpp - MLIR optimizer driver for deltaflow ------------===//
//
// Works like mlir-opt: MLIR in, MLIR out, located diagnostics. Registers the
// func, arith, tensor, tosa and attn dialects, the upstream transforms
// (canonicalize, cse, inline, ...) and every deltaflow pass. Pass plug-ins
// load with --load-pass-plugin=<lib.so>.
//
//===----------------------------------------------------------------------===//

#include "deltaflow/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  // Plug-ins load before option parsing so that their policies and passes
  // are known to --help and to pipelines; a failure is one line and exit 1.
  std::string error;
  if (!mlir::deltaflow::loadPluginArguments(argc, argv, error)) {
    llvm::errs() << "deltaflow-opt: error: " << error << "\n";
    return 1;
  }
  mlir::registerTransformsPasses();
  mlir::deltaflow::registerDeltaflowPasses();
  if (!mlir::deltaflow::checkPassArguments(argc, argv, error)) {
    llvm::errs() << "deltaflow-opt: error: " << error << "\n";
    return 1;
  }
  if (!mlir::deltaflow::checkInputNesting(argc, argv, error)) {
    llvm::errs() << error << "\n";
    return 1;
  }

  mlir::DialectRegistry registry;
  mlir::deltaflow::registerDeltaflowDialects(registry);

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "deltaflow optimizer: attn dialect and sparsity passes\n",
      registry));
}
