//===- AttnDialect.h - attn dialect -----------------------------*- C++ -*-===//
#ifndef DELTAFLOW_DIALECT_ATTN_IR_ATTNDIALECT_H
#define DELTAFLOW_DIALECT_ATTN_IR_ATTNDIALECT_H

#include "mlir/IR/Dialect.h"

#include "deltaflow/Dialect/Attn/IR/AttnDialect.h.inc"

#endif // DELTAFLOW_DIALECT_ATTN_IR_ATTNDIALECT_H
