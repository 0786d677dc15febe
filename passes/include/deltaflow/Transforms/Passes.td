//===- Passes.td - deltaflow transformation passes ---------*- tablegen -*-===//
//
// Every pass of deltaflow is declared here, one def per pass, one .cpp per
// pass under passes/lib named after the def without the `Pass` suffix.
//
//===----------------------------------------------------------------------===//

#ifndef DELTAFLOW_TRANSFORMS_PASSES_TD
#define DELTAFLOW_TRANSFORMS_PASSES_TD

include "mlir/Pass/PassBase.td"

#endif // DELTAFLOW_TRANSFORMS_PASSES_TD
