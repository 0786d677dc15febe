//===- Passes.cpp - pass and dialect registration -------------------------===//

#include "deltaflow/Transforms/Passes.h"
#include "deltaflow/Dialect/Attn/IR/AttnDialect.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/Extensions/InlinerExtension.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Dialect/Tosa/IR/TosaOps.h"
#include "mlir/IR/DialectRegistry.h"

namespace mlir::deltaflow {

void registerDeltaflowDialects(DialectRegistry &registry) {
  registry.insert<attn::AttnDialect, func::FuncDialect, arith::ArithDialect,
                  tensor::TensorDialect, tosa::TosaDialect>();
  func::registerInlinerExtension(registry);
}

} // namespace mlir::deltaflow
