//===- Policies.h - the in-tree sparsity policies ---------------*- C++ -*-===//
//
// One file per policy in this directory: its parameters with their bounds,
// its constraints, its slots and per-head form, its attribute (optional) and
// its Halide selection kernel. Registered by one line each in Builtin.cpp,
// exactly as a plug-in registers one (examples/plugin/DilatedPolicy.cpp).
//
//===----------------------------------------------------------------------===//
#ifndef DELTAFLOW_POLICIES_POLICIES_H
#define DELTAFLOW_POLICIES_POLICIES_H

#include "deltaflow/Compiler/Schedule.h"
#include "deltaflow/Compiler/SelectionKernel.h"
#include "deltaflow/Dialect/Attn/IR/AttnOps.h"
#include "deltaflow/Transforms/SparsityPolicy.h"

namespace deltaflow::sparsity {

// The kernels' vocabulary (Halide) and helpers (SelectionKernel.h).
using namespace compiler;
using Halide::Expr;
using Halide::Func;
using Halide::RDom;
using Halide::Var;

Policy windowPolicy();      // Window.cpp
Policy tokenSelectPolicy(); // TokenSelect.cpp
Policy adaptivePolicy();    // Adaptive.cpp
Policy blockTopKPolicy();   // BlockTopK.cpp
Policy stridedPolicy();     // Strided.cpp

} // namespace deltaflow::sparsity

#endif // DELTAFLOW_POLICIES_POLICIES_H
