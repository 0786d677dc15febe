//===- AttnOps.h - attn dialect ops -----------------------------*- C++ -*-===//
#ifndef DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_H
#define DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "deltaflow/Dialect/Attn/IR/AttnDialect.h"

#include <map>
#include <string>

#include "deltaflow/Dialect/Attn/IR/AttnAttrInterfaces.h.inc"
#define GET_ATTRDEF_CLASSES
#include "deltaflow/Dialect/Attn/IR/AttnAttrs.h.inc"

#define GET_OP_CLASSES
#include "deltaflow/Dialect/Attn/IR/AttnOps.h.inc"

#endif // DELTAFLOW_DIALECT_ATTN_IR_ATTNOPS_H
