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

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  mlir::deltaflow::registerDeltaflowPasses();

  mlir::DialectRegistry registry;
  mlir::deltaflow::registerDeltaflowDialects(registry);

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "deltaflow optimizer: attn dialect and sparsity passes\n",
      registry));
}
