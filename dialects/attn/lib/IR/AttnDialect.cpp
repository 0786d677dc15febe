//===- AttnDialect.cpp - attn dialect registration ------------------------===//

#include "deltaflow/Dialect/Attn/IR/AttnDialect.h"
#include "deltaflow/Dialect/Attn/IR/AttnOps.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::deltaflow::attn;

#include "deltaflow/Dialect/Attn/IR/AttnDialect.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "deltaflow/Dialect/Attn/IR/AttnAttrs.cpp.inc"

void AttnDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "deltaflow/Dialect/Attn/IR/AttnAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "deltaflow/Dialect/Attn/IR/AttnOps.cpp.inc"
      >();
}
